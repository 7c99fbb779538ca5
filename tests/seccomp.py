"""Make system calls fail in a server, as on an older kernel: a seccomp filter.

    start_server(..., refuse=("openat2",))

starts the server with a filter that answers each named system call with
ENOSYS, which is what a kernel that lacks it says (openat2 came in Linux
5.6), or with another errno value (refuse_errno=errno.EPERM: what a container
runtime that forbids io_uring says).  So the suite can check a server's fallback on this machine, with
nothing but the kernel's own seccomp: the filter is a little classic-BPF
program, installed by prctl() in the child between fork and exec, and
inherited by everything the child runs (valgrind included).

Only x86-64 is known here; elsewhere `refusal()` says why it cannot help.
"""

import ctypes
import errno
import platform
import struct

SYSCALL_NUMBERS = {"x86_64": {"io_uring_setup": 425, "openat2": 437}}
AUDIT_ARCH = {"x86_64": 0xC000003E}  # AUDIT_ARCH_X86_64, <linux/audit.h>

PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
# Classic BPF opcodes: load a word of struct seccomp_data, compare, return.
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_RET_K = 0x06
OFFSET_NR, OFFSET_ARCH = 0, 4  # struct seccomp_data { int nr; __u32 arch; ... }


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _instruction(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def unsupported_reason(names):
    """Why refusing `names` cannot be done here, or None if it can."""
    machine = platform.machine()
    if machine not in SYSCALL_NUMBERS:
        return f"system call numbers for {machine} are not in tests/seccomp.py"
    unknown = [name for name in names if name not in SYSCALL_NUMBERS[machine]]
    if unknown:
        return f"tests/seccomp.py does not know {', '.join(unknown)}"
    return None


def refusal(names, err=errno.ENOSYS):
    """A function for subprocess.Popen(preexec_fn=...) that makes `names` fail with
    ENOSYS, or with the errno value `err` (EPERM: what a container runtime's filter says)."""
    reason = unsupported_reason(names)
    if reason:
        raise RuntimeError(reason)
    machine = platform.machine()
    numbers = [SYSCALL_NUMBERS[machine][name] for name in names]
    n = len(numbers)
    # 0: arch; 1: other arch -> allow; 3: nr; one comparison each; allow; refuse.
    program = [
        _instruction(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        _instruction(BPF_JEQ_K, 1, 0, AUDIT_ARCH[machine]),
        _instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        _instruction(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
    ]
    for i, number in enumerate(numbers):
        # Equal: jump over the remaining comparisons and the allow, to the refusal.
        program.append(_instruction(BPF_JEQ_K, n - i, 0, number))
    program.append(_instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    program.append(_instruction(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | err))
    # Built before the fork, so that the child only makes two calls.
    code = ctypes.create_string_buffer(b"".join(program))
    fprog = _SockFprog(len(program), ctypes.addressof(code))
    libc = ctypes.CDLL(None, use_errno=True)

    def install():
        # Without privileges a filter needs no_new_privs: no set-uid program can then run
        # with it, which could otherwise be tricked by the failing calls.
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")

    install.keep_alive = (code, fprog)  # the child reads them after the fork
    return install
