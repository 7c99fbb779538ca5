/*
 * options.h - the command line, described by a table.
 *
 * Each stage lists the options it accepts in one table in its main.c; a later stage adds
 * rows (--root, --threads ...), so `make diff` shows a new option next to the code that
 * uses it. Parsing itself is getopt_long's job; this file only turns the table into
 * getopt_long's form, checks values, and prints usage.
 */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum option_kind {
    OPTION_STRING, /* value points at a const char * */
    OPTION_NUMBER, /* value points at a long, checked against min..max */
    OPTION_FLAG, /* value points at a bool, set to true; the option takes no argument */
    OPTION_DIRECTORY, /* like OPTION_STRING, and it must name an existing directory */
};

struct option_spec {
    const char *name; /* "port" for --port */
    enum option_kind kind;
    const char *value_name; /* "N", "ADDR": how usage shows the argument */
    const char *help; /* one line; usage adds the default */
    void *value; /* holds the default before parsing, the given value after */
    long min, max; /* OPTION_NUMBER only */
};

/*
 * Parses argv against the table. --help prints usage on stdout and exits 0. An unknown
 * option, a missing or bad value, or a stray argument prints one line naming it and the
 * usage on stderr, and exits 2 (the convention of command-line tools: 2 = bad usage).
 */
void options_parse(int argc, char **argv, const struct option_spec *specs, size_t count,
                   const char *summary);

/*
 * For a value only the program can judge (one of a few words, say): prints one line
 * naming what is wrong and the usage on stderr, and exits 2, as options_parse() does.
 */
void options_usage_error(const struct option_spec *specs, size_t count, const char *summary,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5), noreturn));

#endif
