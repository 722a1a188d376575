"""fp8emu.torch: the FP8 Linear against fp8emu's quantize_matrix and GEMM, training, state,
convert, per-layer recipes, statistics and bad input."""

import copy
import fnmatch
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="fp8emu.torch needs PyTorch (Debian python3-torch)")

import fp8emu  # noqa: E402
import fp8emu.torch as ft  # noqa: E402

ROLES = ("fprop", "dgrad", "wgrad")

# The fixed sign vector of the 16-point random Hadamard transform of NVFP4 training
# (Transformer Engine, transformer_engine/pytorch/tensor/nvfp4_tensor.py,
# get_wgrad_sign_vector).
HADAMARD_SIGNS = np.array([1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1], np.float32)


def hadamard_rows(m):
    """Every full run of 16 of each row of m (float32) times D H / 4, in float32: v d / 4,
    then the four butterfly stages (a + b, a - b) of the fast Walsh-Hadamard transform."""
    m = np.ascontiguousarray(m, np.float32)
    rows, k = m.shape
    runs = k // 16
    v = m[:, : runs * 16].reshape(rows, runs, 16) * (HADAMARD_SIGNS * np.float32(0.25))
    h = 1
    while h < 16:
        v = v.reshape(rows, runs, 16 // (2 * h), 2, h)
        a, c = v[..., 0, :].copy(), v[..., 1, :].copy()
        v[..., 0, :], v[..., 1, :] = a + c, a - c
        v = v.reshape(rows, runs, 16)
        h *= 2
    out = m.copy()
    out[:, : runs * 16] = v.reshape(rows, runs * 16)
    return out


def role_specs(recipe):
    """{role: ({key: value} of operand a, of operand b, accumulation spec)} from recipe.text."""
    kv = dict(line.split(" = ", 1) for line in recipe.text.splitlines() if " = " in line)
    out = {}
    for r in ROLES:
        ops = [{k.split(".", 2)[2]: v for k, v in kv.items() if k.startswith(f"{r}.{o}.")} for o in "ab"]
        out[r] = (ops[0], ops[1], kv[f"{r}.accumulate"])
    return out


def quantize_operand(x, spec, operand, scale, seed, stream):
    """The operand (A: M x K, B: K x N logical, float32) quantized as the recipe's operand
    spec says, by fp8emu.quantize_matrix; float32 without scaling stays float."""
    x = np.asarray(x, np.float32)
    if spec.get("hadamard") == "16":
        x = hadamard_rows(x) if operand == "a" else hadamard_rows(x.T).T
    fmt, scaling = spec["format"], spec["scaling"]
    if fmt == "float32" and scaling == "none":
        return np.ascontiguousarray(x)
    conv = dict(rounding=spec["rounding"], saturation=spec["saturation"], seed=seed, stream=stream)
    if "sr-bits" in spec:
        conv["sr_bits"] = int(spec["sr-bits"])
    kmajor = "row" if operand == "a" else "col"
    kind, _, arg = scaling.partition(":")
    if kind == "none":
        return fp8emu.quantize_matrix(x, fmt, scaling="none", operand=operand, **conv)
    if kind == "delayed":
        return fp8emu.quantize_matrix(x, fmt, scaling="tensor", scale=float(scale), operand=operand, **conv)
    if kind == "mx":
        return fp8emu.quantize_matrix(x, fmt, scaling="mx", operand=operand, layout=kmajor,
                                      mx_rule="floor" if arg == "floor" else "ceil", **conv)
    if kind == "nvfp4":
        r, k = (int(v) for v in arg.split("x")) if arg else (1, 16)
        block = (r, k) if operand == "a" else (k, r)
        return fp8emu.quantize_matrix(x, fmt, scaling="nvfp4", block=block, operand=operand, layout=kmajor, **conv)
    raise AssertionError(f"scaling {scaling} not covered by the test")


def reference_gemm(qa, qb, accumulate):
    """fp8emu.gemm of two operands as quantize_operand returns them."""
    formats = {f"{n}_format": "float32" for n, q in (("a", qa), ("b", qb)) if isinstance(q, np.ndarray)}
    return fp8emu.gemm(qa, qb, accumulate=accumulate, **formats)


def same_bits(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


RECIPES = ["fp8-hybrid-delayed", "mxfp8", "nvfp4", "bf16", "fp32"]


@pytest.mark.parametrize("name", RECIPES)
def test_linear_equals_quantize_matrix_and_gemm(name):
    """y, dx, dW and db of two training steps equal fp8emu.gemm of the operands quantized
    by fp8emu.quantize_matrix as each role of the recipe says (the Hadamard transform in
    NumPy; delayed scales: the layer's own from the step before; random streams: the
    layer's), plus the bias; db the float64 column sums of dy."""
    torch.manual_seed(1)
    n, k, m = 32, 64, 48
    layer = ft.Linear(k, m, recipe=name, seed=11, index=5)
    specs = role_specs(layer.recipe)
    compared = 0
    for step in range(2):
        scales = layer.core.state()["scale"]
        x = torch.randn(n, k, requires_grad=True)
        dy = torch.randn(n, m)
        layer.zero_grad(set_to_none=True)
        y = layer(x)
        y.backward(dy)
        xv, wv, dyv = x.detach().numpy(), layer.weight.detach().numpy(), dy.numpy()
        operands = {"fprop": (xv, wv.T), "dgrad": (dyv, wv), "wgrad": (dyv.T, xv)}
        got = {"fprop": y.detach().numpy(), "dgrad": x.grad.numpy(), "wgrad": layer.weight.grad.numpy()}
        for i, role in enumerate(ROLES):
            sa, sb, acc = specs[role]
            stream = layer.core.stream(role, step)
            qa = quantize_operand(operands[role][0], sa, "a", scales[2 * i], 11, 2 * stream)
            qb = quantize_operand(operands[role][1], sb, "b", scales[2 * i + 1], 11, 2 * stream + 1)
            ref = reference_gemm(qa, qb, acc)
            if role == "fprop":
                ref = ref + layer.bias.detach().numpy()
            assert same_bits(got[role], ref), f"{name} step {step} {role}: max |diff| {np.abs(got[role] - ref).max()}"
            compared += 1
        db = np.zeros(m)
        for row in dyv.astype(np.float64):
            db += row
        assert same_bits(layer.bias.grad.numpy(), db.astype(np.float32))
    assert compared == 6
    assert int(layer.fp8_step) == 2
    if name == "fp8-hybrid-delayed":  # the second step used the scales the first step set
        assert (scales != 1).all()


def test_stochastic_rounding_same_seed_same_bits():
    """nvfp4's gradients round stochastically: the same seed gives the same bits, another
    seed or another step other bits."""
    torch.manual_seed(2)
    x0, dy = torch.randn(32, 64), torch.randn(32, 48)

    def grads(seed, steps=1):
        torch.manual_seed(3)
        layer = ft.Linear(64, 48, recipe="nvfp4", seed=seed)
        for _ in range(steps):
            layer.zero_grad(set_to_none=True)
            x = x0.clone().requires_grad_(True)
            layer(x).backward(dy)
        return x.grad.clone(), layer.weight.grad.clone()

    a, b, c = grads(1), grads(1), grads(2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])
    d = grads(1, steps=2)  # the second step draws other random bits for the same operands
    assert not torch.equal(a[0], d[0])


def _mlp(seed, hidden=64):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(16, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 4))


def _task():
    """4 classes of 16-dimensional points: labels of a fixed random linear map of the input
    (seeded), 512 training and 512 test points."""
    g = torch.Generator().manual_seed(1234)
    w = torch.randn(16, 4, generator=g)
    x = torch.randn(1024, 16, generator=g)
    y = (x @ w + 0.3 * torch.randn(1024, 4, generator=g)).argmax(1)
    return x[:512], y[:512], x[512:], y[512:]


def _train(recipe, seed, steps=200):
    xtr, ytr, xte, yte = _task()
    model = _mlp(seed)
    if recipe is not None:
        ft.convert(model, recipe, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, 512, (64,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(xte)
        return torch.nn.functional.cross_entropy(out, yte).item(), (out.argmax(1) == yte).float().mean().item()


def test_mlp_trains_under_fp8_hybrid_delayed_within_the_fp32_seed_spread():
    """A 2-layer MLP, 200 SGD steps on a 4-class task, 3 seeds each: the mean test loss
    under fp8-hybrid-delayed is within the fp32 runs' seed spread (max - min of their test
    losses) of the fp32 mean. A coarser recipe (mxfp4: 3-bit e2m1 weights) lies outside
    it: the tolerance tells recipes apart."""
    runs = {r: np.array([_train(r, s)[0] for s in range(3)]) for r in (None, "fp8-hybrid-delayed", "mxfp4")}
    fp32, fp8, fp4 = runs[None], runs["fp8-hybrid-delayed"], runs["mxfp4"]
    spread = fp32.max() - fp32.min()
    assert 0 < spread < 0.1 * fp32.mean(), runs
    assert abs(fp8.mean() - fp32.mean()) <= spread, runs
    assert fp4.mean() - fp32.mean() > spread, runs
    assert all(_train(r, 0, steps=0)[0] > 1.2 for r in (None, "fp8-hybrid-delayed"))  # it learned: ln 4 at start


@pytest.mark.parametrize("recipe", ["fp8-hybrid-delayed", "nvfp4"])
def test_state_dict_round_trip_continues_bit_for_bit(recipe):
    """Saving and loading a model's state_dict (weights, delayed amax histories, scales and
    the step, which keys stochastic rounding's streams) into a fresh model: the next
    training step equals the one without the round trip, bit for bit."""
    delayed = recipe == "fp8-hybrid-delayed"

    def make():
        return ft.convert(_mlp(5), recipe, seed=3)

    xtr, ytr, _, _ = _task()

    def step(model):
        model.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(xtr[:64]), ytr[:64])
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
            return model(xtr[64:128])  # no gradients: not a training step

    a = make()
    for _ in range(3):
        step(a)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    sd = a.state_dict()
    assert int(sd["0.fp8_step"]) == 3
    if delayed:
        # The first layer's input needs no gradient: its dgrad never ran.
        assert sd["0.fp8_amax_recorded"].tolist() == [3, 3, 0, 0, 3, 3]
        assert sd["2.fp8_amax_recorded"].tolist() == [3] * 6
        assert sd["0.fp8_amax_history"].shape == (6, 1024)
        assert float(sd["0.fp8_amax_history"][0, 2]) > 0 and float(sd["0.fp8_amax_history"][0, 3]) == 0
    else:
        assert sd["0.fp8_amax_history"].shape == (6, 0)
    buf.seek(0)
    b = make()
    assert int(b[0].fp8_step) == 0
    if delayed:
        assert not torch.equal(b[0].fp8_scale, a[0].fp8_scale)
    b.load_state_dict(torch.load(buf))
    for la, lb in zip((a[0], a[2]), (b[0], b[2])):
        for key, v in la.core.state().items():
            assert np.array_equal(v, lb.core.state()[key]), key
    ya, yb = step(a), step(b)
    assert same_bits(ya.numpy(), yb.numpy())
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert same_bits(pa.grad.numpy(), pb.grad.numpy())
    assert torch.equal(a[0].fp8_amax_history, b[0].fp8_amax_history)
    if not delayed:
        return
    # A state that training cannot produce is refused with the reason.
    bad = a.state_dict()
    bad["0.fp8_scale"] = torch.full((6,), -1.0)
    with pytest.raises(RuntimeError, match="scale is not finite and positive"):
        b.load_state_dict(bad)


def test_deepcopy_copies_the_state():
    model = ft.convert(_mlp(6, hidden=16), "fp8-hybrid-delayed")
    x = torch.randn(8, 16)
    model(x).sum().backward()
    twin = copy.deepcopy(model)
    assert twin[0].core is not model[0].core
    assert np.array_equal(twin[0].core.state()["scale"], model[0].core.state()["scale"])
    assert torch.equal(twin(x), model(x))  # one more step each, from the same state
    model(x)
    assert not np.array_equal(twin[0].core.state()["amax_recorded"], model[0].core.state()["amax_recorded"])


def test_evaluation_does_not_advance_the_state():
    layer = ft.Linear(16, 8)
    x = torch.randn(4, 16)
    layer(x)
    st = layer.core.state()
    layer.eval()
    layer(x)
    layer.train()
    with torch.no_grad():
        layer(x)
    for key, v in layer.core.state().items():
        assert np.array_equal(v, st[key]), key
    assert int(layer.fp8_step) == 1


def test_convert_keep_and_layer_overrides():
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("encoder", torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16)))
    model.add_module("head", torch.nn.Linear(16, 4))
    model.add_module("aux", torch.nn.Linear(16, 2))
    weights = {n: p for n, p in model.named_parameters()}
    recipe = fp8emu.Recipe("fp8-hybrid-delayed").set("layer.head", "bf16").set("layer.encoder.2", "mxfp8")
    ft.convert(model, recipe, keep=("au*",))
    kinds = {p: type(m) for p, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert kinds == {"encoder.0": ft.Linear, "encoder.2": ft.Linear, "head": ft.Linear, "aux": torch.nn.Linear}
    # The same Parameter objects: an optimizer made before convert still holds them.
    assert all(p is weights[n] for n, p in model.named_parameters())
    assert model.head.core.override == "bf16" and model.encoder[2].core.override == "mxfp8"
    assert model.encoder[0].core.override is None
    assert [m.core.index for _, m in ft.layers(model)] == [0, 1, 2]
    assert "recipe=fp8-hybrid-delayed, name=head (bf16)" in repr(model.head)
    # bf16 and mxfp8 have no delayed scaling: no history; the encoder's first layer has.
    assert model.head.fp8_amax_history.shape == (6, 0) and model.encoder[2].fp8_amax_history.shape == (6, 0)
    assert model.encoder[0].fp8_amax_history.shape == (6, 1024)
    # The override's GEMMs: head's output is bf16 operands with float32 sums.
    x = torch.randn(8, 16)
    ref = fp8emu.RecipeLinear(fp8emu.Recipe("bf16")).fprop(x.numpy(), model.head.weight.detach().numpy())
    assert same_bits(model.head(x).detach().numpy(), ref + model.head.bias.detach().numpy())
    fp8 = fp8emu.RecipeLinear(fp8emu.Recipe("fp8-hybrid-delayed")).fprop(x.numpy(),
                                                                          model.head.weight.detach().numpy())
    assert not same_bits(ref, fp8)
    assert fnmatch.fnmatchcase("aux", "au*")


def test_statistics():
    torch.manual_seed(0)
    model = ft.convert(_mlp(0, hidden=32), "fp8-hybrid-delayed")
    x = torch.randn(16, 16, requires_grad=True)
    model(x).sum().backward()
    stats = ft.statistics(model)
    assert set(stats) == {"0", "2"}
    s = stats["0"]["fprop"]["a"]
    assert s["count"] == 16 * 16 and s["uses"] == 1
    assert s["amax"] == pytest.approx(float(x.detach().abs().max()))
    assert 15 < s["sqnr_db"] < 40  # e4m3fn keeps 3 fraction bits: about 30 dB on Gaussian data
    assert 0 <= s["flushed_fraction"] <= 1 and s["saturated_fraction"] == 0
    assert stats["0"]["wgrad"]["b"]["count"] == 16 * 16
    assert stats["2"]["dgrad"]["a"]["count"] == 16 * 4
    ft.reset_statistics(model)
    assert ft.statistics(model)["0"]["fprop"]["a"]["count"] == 0


def test_fake_quantize_straight_through():
    x = torch.tensor([0.1, 1.03, -3.3, 500.0], requires_grad=True)
    y = ft.fake_quantize(x, "e4m3fn")
    assert same_bits(y.detach().numpy(), fp8emu.fake_quantize(x.detach().numpy(), "e4m3fn"))
    assert y[3].item() == 448.0  # saturated (finite, the default)
    (y * torch.arange(4.0)).sum().backward()
    assert torch.equal(x.grad, torch.arange(4.0))


def test_recipes_from_python():
    assert "fp8-hybrid-delayed" in fp8emu.recipe_names() and "nvfp4" in fp8emu.recipe_names()
    r = fp8emu.Recipe("fp8-hybrid-delayed")
    assert r.name == "fp8-hybrid-delayed" and "delayed" in r.description
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        fp8emu.Recipe("nope")
    with pytest.raises(ValueError, match="unknown recipe key 'fprop.x'"):
        r.set("fprop.x", "1")
    assert r == fp8emu.Recipe("fp8-hybrid-delayed")  # unchanged by the refused key
    r.set("fprop.a.scaling", "delayed:history=16")
    assert "fprop.a.scaling = delayed:history=16:algo=max" in r.text
    assert ft.Linear(4, 4, recipe=r).fp8_amax_history.shape == (6, 1024)


def test_recipe_file_round_trip(tmp_path):
    r = fp8emu.Recipe("mxfp8").set("layer.head", "bf16")
    path = tmp_path / "mine.recipe"
    path.write_text(r.text.replace("name = mxfp8", "name = mine"))
    back = fp8emu.Recipe.from_file(str(path))
    assert back.name == "mine" and back.layers == [("head", "bf16")]
    assert fp8emu.Recipe(str(path)) == back
    (tmp_path / "bad.recipe").write_text("fprop.a.format = e9m9\n")
    with pytest.raises(ValueError, match="bad.recipe"):
        fp8emu.Recipe(str(tmp_path / "bad.recipe"))


def test_bad_input():
    layer = ft.Linear(8, 4)
    with pytest.raises(TypeError, match="float32"):
        layer(torch.randn(2, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32"):
        ft.Linear(8, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="CPU"):
        ft.Linear(8, 4, device="cuda")
    meta = torch.empty(2, 8, device="meta")
    with pytest.raises(ValueError, match="CPU"):
        layer(meta)
    with pytest.raises(ValueError, match="x is 2x7, w is 4x8"):
        layer(torch.randn(2, 7))
    with pytest.raises(ValueError, match="unknown recipe"):
        ft.Linear(8, 4, recipe="fp9")
    with pytest.raises(TypeError, match="recipe"):
        ft.Linear(8, 4, recipe=3)
    core = layer.core
    with pytest.raises(ValueError, match="x.shape\\[1\\] == w.shape\\[1\\]"):
        core.fprop(np.zeros((2, 7), np.float32), np.zeros((4, 8), np.float32))
    with pytest.raises(TypeError, match="float32"):
        core.fprop(np.zeros((2, 8)), np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        core.fprop(np.zeros(8, np.float32), np.zeros((4, 8), np.float32))


def test_batch_dimensions_and_copies():
    """Inputs of shape (*, in) as torch.nn.Linear takes them, and non-contiguous ones, give
    the rows of the 2-D call."""
    torch.manual_seed(4)
    layer = ft.Linear(8, 4, recipe="mxfp8")
    x = torch.randn(3, 5, 8)
    y = layer(x)
    assert y.shape == (3, 5, 4)
    layer.eval()
    y2 = layer(x.reshape(15, 8)).reshape(3, 5, 4)
    xt = x.reshape(15, 8).t().contiguous().t()  # the same values, column-major
    assert not xt.is_contiguous()
    assert torch.equal(layer(xt), y2.reshape(15, 4))


def test_threads_do_not_change_the_bits():
    """A layer large enough for the GEMMs to run on several threads (>= 2^22 products), with
    stochastic rounding (nvfp4): 1 and 2 threads give the same bits."""
    torch.manual_seed(7)
    x0, dy = torch.randn(128, 256), torch.randn(128, 160)
    out = []
    for threads in (1, 2):
        torch.manual_seed(8)
        layer = ft.Linear(256, 160, recipe="nvfp4", seed=4, threads=threads)
        x = x0.clone().requires_grad_(True)
        y = layer(x)
        y.backward(dy)
        out.append((y.detach(), x.grad, layer.weight.grad))
    for a, b in zip(*out):
        assert torch.equal(a, b)


def test_import_without_torch():
    """`import fp8emu` does not import PyTorch; `import fp8emu.torch` without it raises
    ImportError saying what is missing."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['torch'] = None\n"
            "import fp8emu\n"
            "assert fp8emu.Recipe('fp32').name == 'fp32'\n"
            "try:\n"
            "    import fp8emu.torch\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "fp8emu.torch needs PyTorch" in p.stdout


def test_one_layer_from_two_threads():
    """Two Python threads calling one layer's GEMMs (which run without the GIL) get what a
    single thread gets: the calls take turns on the layer's workspace and state."""
    import threading

    rng = np.random.default_rng(9)
    core = fp8emu.RecipeLinear(fp8emu.Recipe("mxfp8"))
    x = rng.standard_normal((64, 256), dtype=np.float32)
    ws = [rng.standard_normal((96, 256), dtype=np.float32) for _ in range(2)]
    expected = [core.fprop(x, w, training=False) for w in ws]
    bad = []

    def work(i):
        for _ in range(30):
            if not same_bits(core.fprop(x, ws[i], training=False), expected[i]):
                bad.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_linear_is_a_torch_linear():
    """The parameters and initialisation of torch.nn.Linear (the same random draws)."""
    torch.manual_seed(12)
    ref = torch.nn.Linear(24, 10)
    torch.manual_seed(12)
    layer = ft.Linear(24, 10)
    assert isinstance(layer, torch.nn.Linear)
    assert torch.equal(layer.weight, ref.weight) and torch.equal(layer.bias, ref.bias)
    assert ft.Linear(24, 10, bias=False).bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    out = ft.Linear(3, 2, bias=False, recipe="fp32")
    x = torch.randn(5, 3, requires_grad=True)
    out(x).sum().backward()
    assert out.weight.grad.shape == (2, 3) and x.grad.shape == (5, 3)
