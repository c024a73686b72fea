#!/usr/bin/env python3
"""Writes the hand-made seed inputs of fuzz_safetensors and fuzz_dataset.

    /usr/bin/python3 fuzz/make_seeds.py            # into fuzz/seeds/
    /usr/bin/python3 fuzz/make_seeds.py OUTDIR     # elsewhere

Each seed is a hostile (or, for reference, valid) input named after what it
exercises; fuzz/README.md lists them. The fuzzers mutate from here.
"""
import json
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- safetensors --------------------------------------------------------------
# The fuzzer checks files against this model's leaves (see fuzz_safetensors.cpp):
# C [3, 2], W [6, 5], g [5], b [5], W2 [5, 3], g.running_mean/var [5];
# inputs X i32 [4, 3], Y i32 [4].
PARAMS = {"C": [3, 2], "W": [6, 5], "g": [5], "b": [5], "W2": [5, 3],
          "g.running_mean": [5], "g.running_var": [5]}
INPUTS = {"X": [4, 3], "Y": [4]}


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def header_for(tensors, dtype="F32", metadata=None):
    h, off = {}, 0
    if metadata is not None:
        h["__metadata__"] = metadata
    for name, shape in tensors.items():
        size = numel(shape) * 4
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + size]}
        off += size
    return h, off


def st(header, data_len=None, raw_header=None, length=None):
    text = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    n = len(text) if length is None else length
    if data_len is None:
        data_len = max([0] + [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"])
    return struct.pack("<Q", n) + text + bytes(data_len)


h, size = header_for(PARAMS, metadata={"vocab": ".ab", "steps": "10"})
write("safetensors", "valid_checkpoint.safetensors", st(h))
h, _ = header_for(INPUTS, dtype="I32")
write("safetensors", "valid_inputs.safetensors", st(h))
write("safetensors", "empty_object.safetensors", st({}))
write("safetensors", "empty_file.safetensors", b"")
write("safetensors", "seven_bytes.safetensors", b"\x08\x00\x00\x00\x00\x00\x00")
write("safetensors", "huge_header_length.safetensors", st({}, length=0xFFFFFFFFFFFFFFFF))
write("safetensors", "header_over_limit.safetensors", st({}, length=100_000_001))
write("safetensors", "header_past_end.safetensors", st({}, length=4096))
good, _ = header_for({"C": [3, 2]})
full = st(good)
write("safetensors", "truncated_data.safetensors", full[:-5])
write("safetensors", "truncated_header.safetensors", full[:20])
write("safetensors", "overlapping_offsets.safetensors",
      st({"C": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]},
          "b": {"dtype": "F32", "shape": [5], "data_offsets": [4, 24]}}, data_len=24))
write("safetensors", "identical_offsets.safetensors",
      st({"g": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]},
          "b": {"dtype": "F32", "shape": [5], "data_offsets": [0, 20]}}, data_len=20))
write("safetensors", "offset_past_end.safetensors",
      st({"C": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 1 << 62]}}, data_len=24))
write("safetensors", "begin_after_end.safetensors",
      st({"C": {"dtype": "F32", "shape": [3, 2], "data_offsets": [24, 0]}}, data_len=24))
write("safetensors", "span_mismatch.safetensors",
      st({"C": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 20]}}, data_len=24))
write("safetensors", "dtype_f16.safetensors",
      st({"C": {"dtype": "F16", "shape": [3, 2], "data_offsets": [0, 12]}}, data_len=12))
write("safetensors", "dtype_unknown.safetensors",
      st({"C": {"dtype": "Q7", "shape": [3, 2], "data_offsets": [0, 24]}}, data_len=24))
write("safetensors", "dtype_i32_for_param.safetensors", st(header_for({"C": [3, 2]}, dtype="I32")[0]))
write("safetensors", "dtype_not_string.safetensors",
      st({"C": {"dtype": 7, "shape": [3, 2], "data_offsets": [0, 24]}}, data_len=24))
write("safetensors", "shape_overflow.safetensors",
      st({"C": {"dtype": "F32", "shape": [1 << 40, 1 << 40], "data_offsets": [0, 0]}}, data_len=0))
write("safetensors", "shape_wraps_to_small.safetensors",
      st({"C": {"dtype": "F32", "shape": [1 << 62, 4], "data_offsets": [0, 0]}}, data_len=0))
write("safetensors", "shape_negative.safetensors",
      st({"C": {"dtype": "F32", "shape": [-3, 2], "data_offsets": [0, 24]}}, data_len=24))
write("safetensors", "shape_float.safetensors",
      st({"C": {"dtype": "F32", "shape": [3.5, 2], "data_offsets": [0, 28]}}, data_len=28))
write("safetensors", "shape_u64_max.safetensors",
      st(None, raw_header=b'{"C":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}}',
         data_len=4))
write("safetensors", "scalar_and_empty.safetensors",
      st({"s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
          "e": {"dtype": "F32", "shape": [0, 7], "data_offsets": [4, 4]}}, data_len=4))
write("safetensors", "wrong_shape_for_model.safetensors", st(header_for({**PARAMS, "W": [5, 6]})[0]))
write("safetensors", "extra_tensor.safetensors", st(header_for({**PARAMS, "Z": [1]})[0]))
missing = dict(PARAMS)
del missing["W2"]
write("safetensors", "missing_param.safetensors", st(header_for(missing)[0]))
write("safetensors", "not_json.safetensors", st(None, raw_header=b"{not json", data_len=0))
write("safetensors", "not_object.safetensors", st(None, raw_header=b"[1, 2, 3]", data_len=0))
write("safetensors", "entry_not_object.safetensors", st(None, raw_header=b'{"C": 3}', data_len=0))
write("safetensors", "metadata_not_strings.safetensors",
      st(None, raw_header=b'{"__metadata__": {"vocab": [1]}}', data_len=0))
write("safetensors", "empty_name.safetensors",
      st({"": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, data_len=4))
write("safetensors", "invalid_utf8_name.safetensors",
      st(None, raw_header=b'{"\xff\xfe": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}',
         data_len=4))
write("safetensors", "deep_nesting.safetensors", st(None, raw_header=b"[" * 4000 + b"]" * 4000, data_len=0))
write("safetensors", "deep_nesting_in_metadata.safetensors",
      st(None, raw_header=b'{"__metadata__": ' + b'{"a":' * 5000 + b'""' + b"}" * 5001, data_len=0))
write("safetensors", "brackets_in_strings.safetensors",
      st(None, raw_header=b'{"__metadata__": {"k": "' + b"[" * 200 + b'\\"]"}}', data_len=0))

# --- dataset ------------------------------------------------------------------
# First byte: context length (1 + byte % 16); the rest is the names file.
NAMES = b"emma\nolivia\nava\nisabella\nsophia\ncharlotte\nmia\namelia\nharper\nevelyn\n"
write("dataset", "names_ctx3", b"\x02" + NAMES)
write("dataset", "names_ctx16", b"\x0f" + NAMES)
write("dataset", "empty_input", b"")
write("dataset", "empty_file", b"\x02")
write("dataset", "blank_lines", b"\x02\n\n\r\n\n")
write("dataset", "crlf", b"\x02" + NAMES.replace(b"\n", b"\r\n"))
write("dataset", "cr_only", b"\x02emma\rolivia\rava\r")
write("dataset", "double_cr", b"\x02emma\r\r\nava\r\n")
write("dataset", "no_final_newline", b"\x02emma\nava")
write("dataset", "utf8_name", b"\x02zo\xc3\xab\nemma\n")
write("dataset", "latin1_name", b"\x02ren\xe9e\nemma\n")
write("dataset", "nul_byte", b"\x02em\x00ma\nava\n")
write("dataset", "space_in_name", b"\x02mary ann\nava\n")
write("dataset", "tab_in_name", b"\x02mary\tann\nava\n")
write("dataset", "dot_in_name", b"\x02st.john\nava\n")
write("dataset", "outside_model_vocab", b"\x02Emma\nAVA\nx_y\n0123\n~!@#\n")
write("dataset", "single_name", b"\x02emma\n")
write("dataset", "two_names", b"\x02emma\nava\n")
write("dataset", "line_1000", b"\x02" + b"a" * 1000 + b"\nava\n")
write("dataset", "line_1001", b"\x02" + b"a" * 1001 + b"\nava\n")
write("dataset", "binary_garbage", b"\x02" + bytes(range(256)))
