"""Per-thread work between barriers, two barrier logs side by side.

The logs come from the build with barrier_log.patch applied
(MLPC_BARRIER_LOG=FILE: every barrier's entry and exit cycle counter, for
threads 0 and 1). Prints, for each of the P barriers of a step (P: the
step's barrier count, 25 for bench/tanh_chain.mlp), the median work time of
each thread before that barrier and its time inside it, in ns, for log A
and log B (e.g. shared memory against MLPC_SPLIT_WS=2). The segment order
starts at an arbitrary barrier of the step, the same one for two logs of
the same binary and step count. See README.md here.
Usage: barrier_log.py LOG_A LOG_B [P] [TSC_GHZ]
"""
import struct, sys
import numpy as np
ghz = float(sys.argv[4]) if len(sys.argv) > 4 else 2.096
def load(fn, P=25):
    d = open(fn,'rb').read(); off = 0; lanes = []
    for i in range(2):
        n = struct.unpack_from('<Q', d, off)[0]; off += 8
        lanes.append(np.frombuffer(d, dtype=np.uint64, count=n, offset=off).astype(np.int64)); off += 8*n
    a, b = lanes; n = min(len(a), len(b))//2
    out = []
    for x in (a, b):
        e, q = x[0:2*n:2], x[1:2*n:2]
        w = (e[1:] - q[:-1]) / ghz
        wt = (q - e) / ghz   # time inside barrier
        out.append((w, wt))
    # align: find the segment with the largest median work (the step boundary) in a window
    w0 = out[0][0]
    start = len(w0)//2 // P * P
    m = (len(w0) - start)//P*P
    A = [o[0][start:start+m].reshape(-1,P) for o in out]
    W = [o[1][start+1:start+1+m].reshape(-1,P) for o in out]
    return A, W
P = int(sys.argv[3]) if len(sys.argv) > 3 else 25
A0, W0 = load(sys.argv[1], P); A2, W2 = load(sys.argv[2], P)
tot = np.zeros(4)
for k in range(P):
    r = [np.median(A0[0][:,k]), np.median(A0[1][:,k]), np.median(A2[0][:,k]), np.median(A2[1][:,k])]
    wt = [np.median(W0[0][:,k]), np.median(W0[1][:,k]), np.median(W2[0][:,k]), np.median(W2[1][:,k])]
    tot += r
    print(f'seg {k:2d}  A work {r[0]:6.0f} {r[1]:6.0f} barrier {wt[0]:5.0f} {wt[1]:5.0f}   B work {r[2]:6.0f} {r[3]:6.0f} barrier {wt[2]:5.0f} {wt[3]:5.0f}')
print('sum work', tot.round())
