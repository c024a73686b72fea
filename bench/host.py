"""What the harness records about the machine and the tools (issue 15).

cpu_model()          "model name" of /proc/cpuinfo (the first core's)
llvm_cpu()           LLVM's name for the host CPU ("Host CPU:" of `llc -version`),
                     the name mlpc's JIT tunes for; None without llc
measured_peak(tmp)   bench/peak/peak_fma.c's JSON record: the single-core f32
                     FMA peak, swept over vector widths and chain counts
cross_core_ns(tmp)   bench/peak/cross_core.c's JSON record: how long a cache line takes
                     to move between the first two CPUs (one way, ns), or None on a
                     one-CPU machine; it bounds what threads gain and moves on a VM
cross_core_writes_us(tmp)  bench/peak/cross_core_writes.c's JSON record: microseconds for one
                     CPU to write 64 KB that the other has read ("shared"), written
                     ("modified") or not touched ("own"), and "shared" with streaming
                     stores; None on a one-CPU machine. Why a split step loses where the
                     vCPUs are far apart: its weights and cut rows are "shared" lines
busy_cores()         CPUs' worth of other work running now (from /proc/loadavg's runnable
                     count): on a small or shared machine another build beside the harness
                     slows the measured code by up to ~40%, so the harness says so
mlpc_has_flag(...)   whether `mlpc CMD --help` lists a flag (so the harness
                     passes --threads only to an mlpc that has it)
"""
import json
import os
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def llvm_cpu():
    for llc in [shutil.which("llc-19"), "/usr/lib/llvm-19/bin/llc", shutil.which("llc")]:
        if not llc or not os.path.exists(llc):
            continue
        out = subprocess.run([llc, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True).stdout
        for line in out.splitlines():
            if "Host CPU:" in line:
                return line.split(":", 1)[1].strip()
    return None


def measured_peak(tmp):
    """Builds and runs peak_fma.c; -march is not needed (its kernels are asm)."""
    exe = os.path.join(tmp, "peak_fma")
    subprocess.run(["cc", "-O2", os.path.join(HERE, "peak/peak_fma.c"), "-o", exe], check=True)
    out = subprocess.run([exe], check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def two_cpu_probe(tmp, name, args=()):
    """Builds and runs bench/peak/NAME.c (a two-CPU program); its last JSON line, or None where it
    cannot run (one CPU)."""
    exe = os.path.join(tmp, name)
    subprocess.run(["cc", "-O2", "-pthread", os.path.join(HERE, f"peak/{name}.c"), "-o", exe], check=True)
    p = subprocess.run([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 and p.stdout.strip() else None


def cross_core_ns(tmp):
    return two_cpu_probe(tmp, "cross_core", ["--rounds", "5"])


def cross_core_writes_us(tmp):
    return two_cpu_probe(tmp, "cross_core_writes")


def busy_cores():
    """Runnable tasks other than this process (/proc/loadavg field 4 is "running/total")."""
    try:
        with open("/proc/loadavg") as f:
            return max(0, int(f.read().split()[3].split("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return 0


def mlpc_has_flag(mlpc, command, flag):
    p = subprocess.run([mlpc, command, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    return any(line.split()[:1] in ([flag], [flag + ","]) or line.strip().startswith(flag + "=")
               for line in p.stdout.splitlines())


def dnnl_available():
    return any(os.path.exists(p) for p in ["/usr/include/dnnl.h", "/usr/include/oneapi/dnnl/dnnl.h"])


def build_c(tmp, name, src, flags, libs):
    """gcc FLAGS SRC -o tmp/NAME LIBS; returns the executable's path."""
    exe = os.path.join(tmp, name)
    subprocess.run(["gcc"] + flags + [os.path.join(HERE, src), "-o", exe] + libs, check=True)
    return exe
