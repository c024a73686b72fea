"""mlpc's Python module against the command line and closed forms."""
import json
import os
import pathlib
import signal
import threading
import time

import numpy as np
import pytest

import mlpc
from conftest import MODEL, ROOT


def cross_entropy(logits, Y):
    """Mean -log softmax(logits)[Y] in float64: the oracle for forward()."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(Y)), Y].mean())


def test_forward_gives_the_cli_eval_loss(cli, cli_run, names):
    m = mlpc.Model.load(MODEL, cli_run["ckpt"], data=names)
    printed = dict(line.split() for line in
                   cli("eval", MODEL, "--weights", cli_run["ckpt"], "--data", names).splitlines())
    for split in ("train", "val", "test"):
        X, Y = m.split(split)
        loss = cross_entropy(m.forward(X), Y)
        # `mlpc eval` prints 4 decimals; --metrics has them all.
        assert abs(loss - float(printed[split])) <= 0.5e-4 + 1e-6
        assert loss == pytest.approx(cli_run["metrics"][split + "_loss"], abs=2e-6)


def test_training_gives_the_cli_losses(cli_run, names):
    seen = []
    m = mlpc.Model(MODEL, seed=7, data=names)
    losses = m.train(steps=300, every=1, callback=lambda step, loss: seen.append((step, loss)))
    assert [s for s, _ in seen] == list(range(300))
    # The CSV log has 6 decimals of each step's minibatch loss.
    np.testing.assert_allclose([l for _, l in seen], cli_run["log"], atol=0.5e-6 + 1e-7)
    for split in ("train", "val", "test"):
        assert losses[split] == pytest.approx(cli_run["metrics"][split + "_loss"], abs=1e-12)
    # Same trajectory, same parameters, bit for bit.
    cli_model = mlpc.Model.load(MODEL, cli_run["ckpt"], data=names)
    for name, value in m.params.items():
        np.testing.assert_array_equal(value, cli_model.params[name], err_msg=name)
    assert m.step_count == cli_model.step_count == 300


def test_training_continues_like_one_run(names):
    whole = mlpc.Model(MODEL, seed=3, data=names)
    whole.train(steps=40)
    parts = mlpc.Model(MODEL, seed=3, data=names)
    parts.train(steps=15)
    parts.train(steps=25)
    for name, value in whole.params.items():
        np.testing.assert_array_equal(value, parts.params[name], err_msg=name)


def test_params_are_views_of_the_live_parameters(names):
    m = mlpc.Model(MODEL, data=names)
    W2, b2 = m.params["W2"], m.params["b2"]
    assert W2.shape == (200, 27) and W2.dtype == np.float32
    before = W2.copy()
    m.train(steps=5)
    assert not np.array_equal(W2, before), "training must change the view in place"
    # Writing the views changes the model: with W2 = 0 and b2 = 0 every logit
    # is exactly 0, so every loss is log(27).
    W2[:] = 0
    b2[:] = 0
    X, _ = m.split("val")
    assert not m.forward(X[:100]).any()
    for loss in m.eval().values():
        assert loss == pytest.approx(np.log(27), abs=1e-6)


def test_save_is_the_checkpoint_the_cli_reads(cli, names, tmp_path):
    m = mlpc.Model(MODEL, seed=5, data=names)
    m.train(steps=50)
    path = tmp_path / "py.safetensors"
    m.save(str(path))
    printed = cli("sample", MODEL, "--weights", path, "-n", 8, "--seed", 11).splitlines()
    assert printed == m.sample(8, seed=11)
    again = mlpc.Model.load(MODEL, str(path), data=names)
    assert again.step_count == 50 and again.eval() == m.eval()


def test_compile_writes_what_mlpc_compile_writes(cli, cli_run, names, tmp_path):
    m = mlpc.Model.load(MODEL, cli_run["ckpt"], data=names)
    m.compile(str(tmp_path / "py.o"))
    cli("compile", MODEL, "--weights", cli_run["ckpt"], "-o", tmp_path / "cli.o")
    assert (tmp_path / "py.o").read_bytes() == (tmp_path / "cli.o").read_bytes()

    def declarations(stem):  # the header but its comment naming the weights' origin
        text = (tmp_path / (stem + ".h")).read_text()
        text = text.replace(stem + ".", "OUT.").replace(stem.upper() + "_", "OUT_")
        return [line for line in text.splitlines() if " *   weights " not in line]

    assert declarations("py") == declarations("cli")
    # The training object (`mlpc compile --train`), starting from the same weights.
    m.compile(str(tmp_path / "pytrain.o"), train=True)
    cli("compile", MODEL, "--train", "--weights", cli_run["ckpt"], "--data", names,
        "-o", tmp_path / "clitrain.o")
    assert (tmp_path / "pytrain.o").read_bytes() == (tmp_path / "clitrain.o").read_bytes()
    assert declarations("pytrain") == declarations("clitrain")


def malformed_expectation(name):
    """file:line:col: error: message, the first line of the golden .expected file."""
    first = (ROOT / "tests" / "malformed" / (name + ".expected")).read_text().splitlines()[0]
    _, line, col, _, message = first.split(":", 4)
    return int(line), int(col), message.strip()


@pytest.mark.parametrize("name", ["02_unknown_name", "01_matmul_shapes", "20_several_errors"])
def test_model_errors_raise_compile_error_with_locations(name, names):
    path = str(ROOT / "tests" / "malformed" / (name + ".mlp"))
    line, col, message = malformed_expectation(name)
    for make in (lambda: mlpc.check(path), lambda: mlpc.Model(path, data=names)):
        with pytest.raises(mlpc.CompileError) as caught:
            make()
        first = caught.value.diagnostics[0]
        assert (first.file, first.line, first.column) == (path, line, col)
        assert first.severity == "error" and first.message == message
        assert f"{path}:{line}:{col}: error: {message}" in str(caught.value)


def test_missing_files_raise_file_not_found(names, tmp_path):
    with pytest.raises(FileNotFoundError):
        mlpc.Model(str(tmp_path / "nope.mlp"), data=names)
    with pytest.raises(FileNotFoundError):
        mlpc.Model.load(MODEL, str(tmp_path / "nope.safetensors"))


def test_bad_arrays_are_value_errors(names):
    m = mlpc.Model(MODEL, data=names)
    good_X = np.zeros((m.batch, m.context), np.int32)
    good_Y = np.zeros(m.batch, np.int32)
    bad = {
        "float dtype": np.zeros((4, 3), np.float32),
        "1-D": np.zeros(3, np.int32),
        "wrong context": np.zeros((4, 5), np.int32),
        "negative index": np.full((4, 3), -1, np.int32),
        "index past the vocabulary": np.full((4, 3), 27, np.int64),
        "strings": np.array([["a", "b", "c"]]),
        "not an array": object(),
    }
    for why, X in bad.items():
        with pytest.raises(ValueError):
            m.forward(X)
        with pytest.raises(ValueError):
            m.step(X, good_Y)
    with pytest.raises(ValueError):
        m.step(good_X[:-1], good_Y[:-1])  # the step is compiled for the train block's batch
    with pytest.raises(ValueError):
        m.step(good_X, np.full(m.batch, 99, np.int32))
    assert m.step_count == 0, "a rejected batch must not train"
    # Other integer dtypes and lists are fine.
    assert m.forward([[0, 1, 2]]).shape == (1, 27)
    assert np.isfinite(m.step(good_X.astype(np.int64), good_Y))


def test_a_diverged_run_is_a_runtime_error_naming_the_tensor(names):
    m = mlpc.Model(MODEL, data=names)
    with pytest.raises(RuntimeError, match="training diverged: at step 1 the first non-finite"):
        m.train(steps=5, lr=1e30)


def test_step_trains_on_the_given_batch(names):
    m = mlpc.Model(MODEL, data=names)
    X, Y = m.split("train")
    X, Y = X[:m.batch], Y[:m.batch]
    losses = [m.step(X, Y, lr=0.1) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0], "30 steps on one batch must overfit it"
    assert m.step_count == 30


def test_callback_false_stops_and_exceptions_propagate(names):
    m = mlpc.Model(MODEL, data=names)
    m.train(steps=1000, every=1, callback=lambda step, loss: step < 9)
    assert m.step_count == 10

    def boom(step, loss):
        raise ZeroDivisionError("from the callback")

    with pytest.raises(ZeroDivisionError):
        m.train(steps=100, callback=boom)
    assert m.step_count == 11

    seen = []

    def reads_then_trains(step, loss):
        seen.append(m.forward([[0, 0, 0]]).shape)  # reading between two steps is fine
        m.step(np.zeros((m.batch, 3), np.int32), np.zeros(m.batch, np.int32))

    with pytest.raises(RuntimeError, match="can only read the model"):
        m.train(steps=100, callback=reads_then_trains)
    assert seen == [(1, 27)] and m.step_count == 12


def test_training_releases_the_gil(names):
    m = mlpc.Model(MODEL, data=names)
    m.train(steps=1)  # compiled
    done = threading.Event()
    worker = threading.Thread(target=lambda: (m.train(steps=5000), done.set()))
    start = time.perf_counter()
    worker.start()
    last, gap, refused = start, 0.0, 0
    while not done.is_set():  # pure Python: it runs only while train() lets go of the GIL
        now = time.perf_counter()
        gap, last = max(gap, now - last), now
        if refused == 0:
            try:
                m.forward([[0, 0, 0]])
            except RuntimeError:  # the model is busy in the other thread: refused, not raced
                refused += 1
    worker.join()
    total = time.perf_counter() - start
    assert m.step_count == 5001
    assert refused == 1
    assert gap < 0.8 * total, f"the main thread stalled {gap:.3f} s of {total:.3f} s"


def test_ctrl_c_interrupts_training_promptly_with_parameters_intact(names):
    m = mlpc.Model(MODEL, seed=9, data=names)
    m.train(steps=1)  # compile first: the interrupt should land mid-run
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []
    timer = threading.Timer(0.3, lambda: (sent.append(time.monotonic()),
                                          os.kill(os.getpid(), signal.SIGINT)))
    try:
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            m.train(steps=500_000)  # ~10 s: if Ctrl-C is not seen, the test fails, not hangs
        latency = time.monotonic() - sent[0]
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert latency < 1.0, f"KeyboardInterrupt took {latency:.3f} s"  # ~20 ms measured, idle
    steps = m.step_count
    assert 1 < steps < 500_000
    # The parameters are exactly those after `steps` finished steps.
    ref = mlpc.Model(MODEL, seed=9, data=names)
    ref.train(steps=steps)
    for name, value in ref.params.items():
        np.testing.assert_array_equal(m.params[name], value, err_msg=name)


def test_set_overrides_are_the_cli_set(cli, names, tmp_path):
    knobs = {"H": 64, "E": 6, "steps": 120, "lr": 0.2}
    m = mlpc.Model(MODEL, set=knobs, seed=4, data=names)
    assert m.params["C"].shape == (27, 6) and m.params["W1"].shape == (18, 64)
    losses = m.train()  # steps from set
    assert m.step_count == 120
    metrics = tmp_path / "m.json"
    cli("train", MODEL, "--data", names, "--seed", 4, "--samples", 0, "--metrics", metrics,
        *(a for k, v in knobs.items() for a in ("--set", f"{k}={v}")))
    cli_losses = json.loads(metrics.read_text())
    for split in ("train", "val", "test"):
        assert losses[split] == pytest.approx(cli_losses[split + "_loss"], abs=1e-12)
    # The checkpoint records the overrides: the CLI and Model.load rebuild the shapes.
    ckpt = tmp_path / "m.safetensors"
    m.save(str(ckpt))
    printed = dict(line.split() for line in
                   cli("eval", MODEL, "--weights", ckpt, "--data", names).splitlines())
    again = mlpc.Model.load(MODEL, str(ckpt), data=names)
    assert again.params["W1"].shape == (18, 64)
    for split, loss in again.eval().items():
        assert abs(loss - float(printed[split])) <= 0.5e-4 + 1e-6


def test_bad_overrides(names):
    with pytest.raises(ValueError, match="'Q' is not a dim or train setting"):
        mlpc.Model(MODEL, set={"Q": 3}, data=names)
    with pytest.raises(ValueError):
        mlpc.Model(MODEL, set={"H": "many"}, data=names)
    with pytest.raises(TypeError):
        mlpc.Model(MODEL, set={3: 3}, data=names)
    # A value that breaks a shape: the located lowering error, then a note.
    broken = str(ROOT / "tests" / "cli" / "broken_dim.mlp")  # W1 is [D, H], D must be T*E
    with pytest.raises(mlpc.CompileError) as caught:
        mlpc.Model(broken, set={"D": 5}, data=names)
    first, last = caught.value.diagnostics[0], caught.value.diagnostics[-1]
    assert (first.line, first.column, first.severity) == (16, 36, "error")
    assert first.message.startswith("matmul shapes do not match")
    assert last.severity == "note" and "the model's dims are T=3 E=2 D=5 H=16" in last.message


def test_docstrings():
    for obj in (mlpc, mlpc.Model, mlpc.Model.train, mlpc.Model.step, mlpc.Model.forward,
                mlpc.Model.eval, mlpc.Model.sample, mlpc.Model.params, mlpc.Model.save,
                mlpc.Model.load, mlpc.Model.compile, mlpc.check, mlpc.CompileError):
        assert obj.__doc__ and len(obj.__doc__) > 40, obj


def test_thread_counts_give_the_same_numbers(names):
    """threads= as `mlpc train --threads`: at batch 256 (a team under "auto"
    on two cores) one thread, two and auto train to the same bits."""
    runs = []
    for threads in (1, 2, "auto"):
        m = mlpc.Model(MODEL, set={"batch": 256}, data=names, threads=threads)
        m.train(steps=40, every=1000)
        runs.append({k: np.array(v) for k, v in m.params.items()})
    for other in runs[1:]:
        assert other.keys() == runs[0].keys()
        for k in runs[0]:
            assert np.array_equal(other[k], runs[0][k]), k


def test_bad_thread_counts_are_errors(names):
    for bad in (0, 257, -1):
        with pytest.raises(ValueError, match="threads must be"):
            mlpc.Model(MODEL, data=names, threads=bad)
    for bad in ("two", 1.5, True, None):
        with pytest.raises(TypeError, match="threads must be"):
            mlpc.Model(MODEL, data=names, threads=bad)
