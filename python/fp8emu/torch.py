"""fp8emu.torch: PyTorch layers whose GEMMs follow fp8emu's precision recipes.

A recipe (fp8emu.Recipe: a name of fp8emu.recipe_names() or a .recipe file) says how each
GEMM of a linear layer quantizes its operands and accumulates: the forward y = x W^T
(fprop), the input gradient dx = dy W (dgrad) and the weight gradient dW = dy^T x (wgrad).
``Linear`` is a drop-in for ``torch.nn.Linear`` whose three GEMMs are computed by fp8emu
under a recipe (fp8emu.RecipeLinear: the simulator's recipe GEMM, bit for bit), and
``convert`` swaps the ``nn.Linear`` layers of a model for it. Everything runs on the CPU in
float32: tensors of another dtype raise TypeError, tensors on another device ValueError.

The reference is docs/python.md, section "PyTorch: fp8emu.torch".
"""

import fnmatch

try:
    import torch
except ImportError as e:  # pragma: no cover - exercised only without PyTorch
    raise ImportError(
        "fp8emu.torch needs PyTorch (Debian python3-torch, or `pip install torch`); "
        "the rest of fp8emu works without it"
    ) from e

from . import _fp8emu as _core

__all__ = ["fake_quantize", "fp8_linear", "Linear", "convert", "statistics", "reset_statistics", "layers"]

_ROLES = ("fprop", "dgrad", "wgrad")


def _check(t, what):
    """Raises TypeError unless `t` is a float32 tensor, ValueError unless it is on the CPU."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(f"{what}: fp8emu.torch computes on the CPU; the tensor is on {t.device}")
    if t.dtype != torch.float32:
        raise TypeError(f"{what}: fp8emu.torch computes in float32; the tensor is {t.dtype}")


def _numpy(t):
    """The tensor's values as a NumPy array (a view of its memory when it is contiguous)."""
    return t.detach().contiguous().numpy()


def _recipe(recipe):
    """An fp8emu.Recipe from a Recipe, a recipe name or a path ending in .recipe."""
    if isinstance(recipe, _core.Recipe):
        return recipe
    if isinstance(recipe, str):
        return _core.Recipe(recipe)
    raise TypeError(f"recipe: expected an fp8emu.Recipe or a recipe name or path, got {type(recipe).__name__}")


class _FakeQuantize(torch.autograd.Function):
    """fp8emu.fake_quantize forward; the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, x, fmt, options):
        _check(x, "x")
        return torch.from_numpy(_core.fake_quantize(_numpy(x), fmt, **options))

    @staticmethod
    def backward(ctx, dy):
        return dy, None, None


def fake_quantize(x, fmt, **options):
    """Returns x rounded to `fmt` and back (fp8emu.fake_quantize, same keywords: scale,
    rounding, saturation, seed, ...), with a straight-through gradient: d/dx is 1."""
    return _FakeQuantize.apply(x, fmt, options)


class _RecipeMatmul(torch.autograd.Function):
    """y = x W^T (+ b) with fprop, dgrad and wgrad each by the layer's fp8emu.RecipeLinear."""

    @staticmethod
    def forward(ctx, x, weight, bias, core, step, training, done):
        _check(x, "input")
        _check(weight, "weight")
        if bias is not None:
            _check(bias, "bias")
        x2 = x.reshape(-1, x.shape[-1]) if x.dim() != 2 else x
        x2 = x2.detach().contiguous()
        w = weight.detach()
        y = torch.from_numpy(core.fprop(x2.numpy(), _numpy(w), step=step, training=training))
        if bias is not None:
            y += bias.detach()
        ctx.core, ctx.step, ctx.training, ctx.done = core, step, training, done
        ctx.has_bias = bias is not None
        ctx.x_shape = x.shape
        ctx.save_for_backward(x2, w)
        done(training)
        return y.reshape(*x.shape[:-1], y.shape[-1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, dy):
        x2, w = ctx.saved_tensors
        core = ctx.core
        dy2 = _numpy(dy.reshape(-1, dy.shape[-1]))
        dx = dw = db = None
        if ctx.needs_input_grad[1]:
            dw = torch.from_numpy(core.wgrad(dy2, x2.numpy(), step=ctx.step, training=ctx.training))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = torch.from_numpy(core.bias_grad(dy2))
        if ctx.needs_input_grad[0]:
            dx = torch.from_numpy(core.dgrad(dy2, _numpy(w), step=ctx.step, training=ctx.training))
            dx = dx.reshape(ctx.x_shape)
        ctx.done(ctx.training)
        return dx, dw, db, None, None, None, None


def fp8_linear(x, weight, bias, core, *, step=0, training=True):
    """Returns x W^T + b (x: (*, in), W: (out, in)) whose GEMMs (forward, input gradient,
    weight gradient) are those of `core`, an fp8emu.RecipeLinear, at `step`; `training`:
    delayed scaling's histories advance. The bias gradient is the column sums of dy in
    float64, rounded once."""
    return _RecipeMatmul.apply(x, weight, bias, core, int(step), bool(training), lambda t: None)


class Linear(torch.nn.Linear):
    """A drop-in for torch.nn.Linear (the same parameters weight (out, in) and bias, the same
    initialisation) whose three GEMMs follow `recipe` (an fp8emu.Recipe, a recipe name or a
    .recipe path). `name`: the layer's name, matched by the recipe's `layer.PATTERN` keys
    (None: the recipe's own roles). `seed`, `index`: the random streams of stochastic
    rounding (two layers with the same seed should differ in index). `threads`: the GEMMs'
    threads (0: all of OpenMP's; the results do not depend on it).

    The state of delayed scaling lives in buffers, so state_dict saves and loads it:
    fp8_step (the training steps done: the random streams of the next), fp8_amax_history
    (6 x history length), fp8_amax_recorded (6), fp8_scale (6), the slots (fprop, dgrad,
    wgrad) x (operand a, operand b). A forward in training mode with gradients enabled is
    one training step (the histories advance and fp8_step counts it); otherwise the GEMMs
    use the scales as they are.
    """

    def __init__(self, in_features, out_features, bias=True, *, recipe="fp8-hybrid-delayed", name=None, seed=0,
                 index=0, threads=0, device=None, dtype=None):
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"device: fp8emu.torch computes on the CPU, not {device}")
        if dtype is not None and dtype != torch.float32:
            raise TypeError(f"dtype: fp8emu.torch computes in float32, not {dtype}")
        super().__init__(in_features, out_features, bias)
        self._setup(recipe, name, seed, index, threads)

    @classmethod
    def from_linear(cls, linear, recipe="fp8-hybrid-delayed", *, name=None, seed=0, index=0, threads=0):
        """Returns a Linear that shares the parameters (the same Parameter objects) of the
        torch.nn.Linear `linear` and takes its training mode."""
        _check(linear.weight, "weight")
        self = cls.__new__(cls)
        torch.nn.Module.__init__(self)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        if linear.bias is not None:
            self.bias = linear.bias
        else:
            self.register_parameter("bias", None)
        self._setup(recipe, name, seed, index, threads)
        self.train(linear.training)
        return self

    def _setup(self, recipe, name, seed, index, threads):
        names = [] if name is None else [name]
        self.name = name
        self._core = _core.RecipeLinear(_recipe(recipe), names=names, seed=seed, index=index, threads=threads)
        st = self._core.state()
        self.register_buffer("fp8_step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("fp8_amax_history", torch.from_numpy(st["amax_history"]))
        self.register_buffer("fp8_amax_recorded", torch.from_numpy(st["amax_recorded"]))
        self.register_buffer("fp8_scale", torch.from_numpy(st["scale"]))

    @property
    def recipe(self):
        """The layer's recipe (a copy)."""
        return self._core.recipe

    @property
    def core(self):
        """The fp8emu.RecipeLinear that computes the GEMMs."""
        return self._core

    def _pull_state(self, updated):
        # The buffers follow the C++ operand states after every call that advanced them;
        # without delayed scaling (history length 0) the state never changes.
        if not updated or self._core.history_length == 0:
            return
        st = self._core.state()
        with torch.no_grad():
            self.fp8_amax_history.copy_(torch.from_numpy(st["amax_history"]))
            self.fp8_amax_recorded.copy_(torch.from_numpy(st["amax_recorded"]))
            self.fp8_scale.copy_(torch.from_numpy(st["scale"]))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        keys = [prefix + k for k in ("fp8_amax_history", "fp8_amax_recorded", "fp8_scale")]
        if all(k in state_dict for k in keys):
            try:
                for k in keys:
                    if state_dict[k].device.type != "cpu":
                        raise ValueError(f"{k} is on {state_dict[k].device}, not the CPU")
                self._core.set_state(*(state_dict[k].detach().contiguous().numpy() for k in keys))
            except (TypeError, ValueError) as e:
                error_msgs.append(f"fp8emu state of {prefix or 'the layer'}: {e}")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x):
        training = self.training and torch.is_grad_enabled()
        step = int(self.fp8_step)
        y = _RecipeMatmul.apply(x, self.weight, self.bias, self._core, step, training, self._pull_state)
        if training:
            with torch.no_grad():
                self.fp8_step += 1
        return y

    def statistics(self):
        """Returns {role: {"a": stats, "b": stats}} (fp8emu.RecipeLinear.statistics): the
        quantization statistics of every call since the last reset_statistics()."""
        return self._core.statistics()

    def reset_statistics(self):
        self._core.reset_statistics()

    def extra_repr(self):
        s = super().extra_repr() + f", recipe={self._core.recipe.name}"
        if self.name is not None:
            s += f", name={self.name}"
        if self._core.override is not None:
            s += f" ({self._core.override})"
        return s


def _keep(path, keep):
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in keep)


def convert(model, recipe="fp8-hybrid-delayed", *, keep=(), seed=0, threads=0):
    """Replaces, in place, every torch.nn.Linear of `model` (and `model` itself when it is
    one: the result is returned) by a Linear under `recipe` that shares its parameters,
    except those whose module path (as named_modules gives it, "encoder.0.fc1") matches a
    glob of `keep` (fnmatch: `*`, `?`, `[...]`). Each layer's name is its module path, so
    the recipe's `layer.PATTERN` keys apply to it; its index is its place among the
    converted layers (their random streams differ). Returns the model."""
    if isinstance(keep, str):
        keep = (keep,)
    rec = _recipe(recipe)
    if type(model) is torch.nn.Linear:
        return model if _keep("", keep) else Linear.from_linear(model, rec, seed=seed, threads=threads)
    targets = [(p, m) for p, m in model.named_modules() if type(m) is torch.nn.Linear and not _keep(p, keep)]
    for index, (path, child) in enumerate(targets):
        parent, _, attr = path.rpartition(".")
        setattr(model.get_submodule(parent), attr,
                Linear.from_linear(child, rec, name=path, seed=seed, index=index, threads=threads))
    return model


def layers(model):
    """Returns the (module path, fp8emu.torch.Linear) pairs of `model`, in module order."""
    return [(path, m) for path, m in model.named_modules() if isinstance(m, Linear)]


def statistics(model):
    """Returns {module path: {role: {"a": stats, "b": stats}}} for every fp8emu.torch.Linear
    of `model`: amax, count, nonzero, flushed, saturated, their fractions, sqnr_db, ..."""
    return {path: m.statistics() for path, m in layers(model)}


def reset_statistics(model):
    """Clears the statistics of every fp8emu.torch.Linear of `model`."""
    for _, m in layers(model):
        m.reset_statistics()
