/*
 * options.c - the command line, described by a table (see options.h).
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { MAX_OPTIONS = 32 };

static void print_usage(FILE *out, const struct option_spec *specs, size_t count,
                        const char *summary)
{
    fprintf(out, "usage: %s", program_invocation_short_name);
    for (size_t i = 0; i < count; i++) {
        if (specs[i].kind == OPTION_FLAG)
            fprintf(out, " [--%s]", specs[i].name);
        else
            fprintf(out, " [--%s %s]", specs[i].name, specs[i].value_name);
    }
    fprintf(out, " [--help]\n%s\n\n", summary);

    for (size_t i = 0; i < count; i++) {
        const struct option_spec *s = &specs[i];
        char left[64];
        if (s->kind == OPTION_FLAG)
            snprintf(left, sizeof left, "--%s", s->name);
        else
            snprintf(left, sizeof left, "--%s %s", s->name, s->value_name);
        fprintf(out, "  %-22s %s", left, s->help);
        if ((s->kind == OPTION_STRING || s->kind == OPTION_DIRECTORY) &&
            *(const char **)s->value != NULL)
            fprintf(out, " (default %s)", *(const char **)s->value);
        else if (s->kind == OPTION_NUMBER)
            fprintf(out, " (default %ld)", *(long *)s->value);
        fputc('\n', out);
    }
    fprintf(out, "  %-22s %s\n", "--help", "show this help and exit");
}

void options_usage_error(const struct option_spec *specs, size_t count, const char *summary,
                         const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fprintf(stderr, "%s: ", program_invocation_short_name);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    print_usage(stderr, specs, count, summary);
    exit(2);
}

/* strtol accepts leading spaces, a sign and trailing junk; a port number must be all digits. */
static bool parse_number(const char *text, long min, long max, long *out)
{
    if (*text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || n < min || n > max)
        return false;
    *out = n;
    return true;
}

void options_parse(int argc, char **argv, const struct option_spec *specs, size_t count,
                   const char *summary)
{
    /*
     * getopt_long wants its own table. Each option's value is its index in ours; indexes
     * stay below MAX_OPTIONS, clear of the 'h', '?' and ':' that getopt_long also returns.
     */
    struct option long_options[MAX_OPTIONS + 2];
    if (count > MAX_OPTIONS)
        abort(); /* a programming error, not a user's */
    for (size_t i = 0; i < count; i++) {
        int has_arg = specs[i].kind == OPTION_FLAG ? no_argument : required_argument;
        long_options[i] = (struct option){specs[i].name, has_arg, NULL, (int)i};
    }
    long_options[count] = (struct option){"help", no_argument, NULL, 'h'};
    long_options[count + 1] = (struct option){0};

    opterr = 0; /* we print our own one-line message, then usage */
    for (;;) {
        int found = getopt_long(argc, argv, ":", long_options, NULL);
        if (found == -1)
            break;
        if (found == 'h') {
            print_usage(stdout, specs, count, summary);
            exit(0);
        }
        if (found == '?')
            options_usage_error(specs, count, summary, "unknown option '%s'", argv[optind - 1]);
        if (found == ':')
            options_usage_error(specs, count, summary, "option '%s' needs a value",
                                argv[optind - 1]);

        const struct option_spec *s = &specs[found];
        switch (s->kind) {
        case OPTION_STRING:
            *(const char **)s->value = optarg;
            break;
        case OPTION_FLAG:
            *(bool *)s->value = true;
            break;
        case OPTION_DIRECTORY: {
            struct stat st;
            if (stat(optarg, &st) < 0)
                options_usage_error(specs, count, summary, "--%s: '%s': %s", s->name, optarg,
                                    strerror(errno));
            if (!S_ISDIR(st.st_mode))
                options_usage_error(specs, count, summary, "--%s: '%s' is not a directory", s->name,
                                    optarg);
            *(const char **)s->value = optarg;
            break;
        }
        case OPTION_NUMBER:
            if (!parse_number(optarg, s->min, s->max, (long *)s->value))
                options_usage_error(specs, count, summary,
                                    "--%s: '%s' is not a whole number from %ld to %ld", s->name,
                                    optarg, s->min, s->max);
            break;
        }
    }
    if (optind < argc)
        options_usage_error(specs, count, summary, "unexpected argument '%s'", argv[optind]);
}
