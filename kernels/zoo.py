"""Models by name, and their inputs: the names every entry point takes (a torchvision model name,
``package.module:factory``, ``timm:NAME``, the builtin decoder), the ``--input`` / ``--batch-sweep`` texts, and the
check of the counter against torchvision's published counts. Building a model is apart from counting one
(kernels/count.py), which takes any ``nn.Module``.
"""
from __future__ import annotations

import difflib
import importlib
import re
from pathlib import Path

import torch

from kernels.count import DTYPES, CountError, Counts, count_model


class _ParametersOn:
    """Build a model with its parameters and buffers on ``device`` while everything else its constructor computes
    stays on the CPU (RegNet computes its widths with torch ops and reads them back: a plain
    ``with torch.device("meta")`` breaks that)."""

    def __init__(self, device: str):
        self.device = torch.device(device)

    def __enter__(self):
        self.saved = torch.nn.Module.register_parameter, torch.nn.Module.register_buffer
        register_parameter, register_buffer = self.saved
        device = self.device

        def parameter(module, name, param):
            register_parameter(module, name, param)
            if param is not None and param.device != device:
                kind = type(module._parameters[name])
                module._parameters[name] = kind(module._parameters[name].to(device), requires_grad=param.requires_grad)

        def buffer(module, name, tensor, persistent=True):
            register_buffer(module, name, tensor.to(device) if tensor is not None else None, persistent)

        torch.nn.Module.register_parameter, torch.nn.Module.register_buffer = parameter, buffer
        return self

    def __exit__(self, *exc):
        torch.nn.Module.register_parameter, torch.nn.Module.register_buffer = self.saved
        return False


def build_timm(name: str, device: str = "meta") -> torch.nn.Module:
    """``timm:NAME``: a timm model (no pretrained weights), when timm is installed (the ``timm`` extra)."""
    try:
        import timm
    except ImportError:
        raise CountError(f"timm:{name}: timm is not installed (pip install -e '.[timm]', or pip install timm)") from None
    known = timm.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
        raise CountError(f"timm:{name}: unknown timm model" + (f"; did you mean {', '.join(close)}?" if close else
                                                              "; see timm.list_models()"))
    with _ParametersOn(device) if device == "meta" else torch.device(device):
        try:
            return timm.create_model(name, pretrained=False)
        except Exception as exc:
            raise CountError(f"timm:{name} could not be built: {type(exc).__name__}: {exc}") from None


def build_model(name: str, device: str = "meta", **model_kwargs) -> torch.nn.Module:
    """A torchvision model name (no weights are loaded), ``package.module:factory`` or ``timm:NAME``, built on
    ``device``."""
    if name.startswith("timm:"):
        return build_timm(name[len("timm:"):], device)
    context = _ParametersOn(device) if device == "meta" else torch.device(device)
    with context:
        if ":" in name:
            module_name, _, attr = name.partition(":")
            try:
                factory = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as exc:
                raise CountError(f"cannot load {name!r}: {exc}") from exc
            if not callable(factory):
                raise CountError(f"{name!r} is a {type(factory).__name__}, not a factory: give a function or class "
                                 "that returns an nn.Module")
            try:
                model = factory(**model_kwargs)
            except TypeError as exc:
                raise CountError(f"the factory {name!r} could not be called without arguments ({exc}); wrap it in a "
                                 "function that takes none and returns the model") from None
            except Exception as exc:
                raise CountError(f"the factory {name!r} raised {type(exc).__name__}: {exc}") from None
            if not isinstance(model, torch.nn.Module):
                raise CountError(f"the factory {name!r} returned a {type(model).__name__}, not a torch.nn.Module")
            return model
        try:
            import torchvision
        except ImportError as exc:
            raise CountError(f"{name!r} looks like a torchvision model name, but torchvision is not installed "
                             "(pip install torchvision, or pass package.module:factory)") from exc
        known = torchvision.models.list_models()
        if name not in known:
            close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else "; see torchvision.models.list_models()"
            raise CountError(f"unknown model {name!r}{hint}")
        return torchvision.models.get_model(name, weights=None, **model_kwargs)


def parse_shape(text: str) -> tuple[int, ...]:
    """'1,3,224,224' (or '1x3x224x224') -> (1, 3, 224, 224); every part must be a positive integer."""
    text = text or ""
    separator = "," if "," in text else "x"
    parts = [v.strip() for v in text.strip().split(separator)] if text.strip() else []
    bad = [v for v in parts if not re.fullmatch(r"\d+", v)]
    if not parts or bad:
        what = (f"{', '.join(repr(v) for v in bad)} {'is' if len(bad) == 1 else 'are'} not a positive integer"
                if bad else "it is empty")
        raise CountError(f"bad input shape {text!r}: {what}; give integers separated by commas, e.g. 1,3,224,224") \
            from None
    shape = tuple(int(v) for v in parts)
    if any(v <= 0 for v in shape):
        raise CountError(f"bad input shape {text!r}: every dimension must be a positive integer")
    return shape


#: dtypes an input may be given with a ':' suffix (token ids are integers)
INPUT_DTYPES = {"int64": torch.int64, "int32": torch.int32, "bool": torch.bool}


def parse_input(text: str) -> tuple[tuple[int, ...], str | None]:
    """'1,128:int64' -> ((1, 128), 'int64'); without a suffix the model's dtype is used (None)."""
    shape_text, _, dtype = text.partition(":")
    dtype = dtype.strip() or None
    if dtype is not None and dtype not in INPUT_DTYPES and dtype not in DTYPES:
        raise CountError(f"bad input {text!r}: unknown dtype {dtype!r}; choose from "
                         f"{', '.join([*INPUT_DTYPES, *DTYPES])}")
    return parse_shape(shape_text), dtype


def parse_batches(text: str) -> list[int]:
    try:
        batches = [int(v) for v in text.split(",")]
    except ValueError:
        raise CountError(f"--batch-sweep {text!r}: give positive integers separated by commas, e.g. 1,8,64") from None
    if not batches or any(b <= 0 for b in batches):
        raise CountError(f"--batch-sweep {text!r}: every batch size must be a positive integer")
    return batches


def check_device(device: str) -> str:
    """meta, cpu, cuda, cuda:N (present), mps (present); anything else is a one-line error."""
    if device in ("meta", "cpu"):
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise CountError(f"--device {device}: no CUDA device is available here; use --device meta (the default: "
                             "counts without allocating) or cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise CountError(f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)")
        return device
    if device == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CountError("--device mps: MPS is not available here; use --device meta or cpu")
        return device
    raise CountError(f"--device {device!r}: unknown; choose meta (default), cpu, cuda, cuda:N or mps")


def check_output_path(path: str, option: str) -> None:
    """Fail before counting if ``path`` cannot be written (a long count must not end in a lost table)."""
    target = Path(path)
    existed = target.exists()
    try:
        with open(target, "a"):
            pass
    except OSError as exc:
        raise CountError(f"{option} {path}: cannot be written ({exc.strerror or exc})") from None
    if not existed:
        target.unlink()


def make_input(shape: tuple[int, ...], dtype: str | None, model_dtype: str, device: str) -> torch.Tensor:
    """One model input: random floats in the model's dtype, or zeros of an integer dtype (token ids)."""
    if dtype in INPUT_DTYPES:
        return torch.zeros(shape, device=device, dtype=INPUT_DTYPES[dtype])
    torch_dtype = DTYPES[dtype or model_dtype]
    return torch.randn(shape, device=device, dtype=torch_dtype) if device != "meta" else \
        torch.empty(shape, device=device, dtype=torch_dtype)


def count_named(name: str, shape, dtype: str = "fp32", device: str = "meta", train: bool = False,
                inputs: list[tuple[tuple[int, ...], str | None]] | None = None) -> Counts:
    """Count ``name`` on one input of ``shape`` (or on several ``inputs``: (shape, dtype or None) each)."""
    if dtype not in DTYPES:
        raise CountError(f"unknown dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    model = build_model(name, device).to(DTYPES[dtype])
    specs = inputs or [(tuple(shape), None)]
    return count_model(model, tuple(make_input(s, d, dtype, device) for s, d in specs), train=train)


def batch_sweep(name: str, shape: tuple[int, ...], batches: list[int], dtype: str = "fp32",
                device: str = "meta"):
    """Total FLOPs, bytes and intensity at several batch sizes (weights are read once per batch, so intensity
    grows with the batch until activations dominate)."""
    import pandas as pd

    rows = []
    for batch in batches:
        counts = count_named(name, (batch, *shape[1:]), dtype, device)
        rows.append({"batch": batch, "flops": counts.flops, "other_flops": counts.other_flops,
                     "bytes": counts.bytes_read + counts.bytes_written, "intensity": counts.intensity})
    return pd.DataFrame(rows)


#: ops whose MACs torchvision's ``weights.meta["_ops"]`` counts (convolutions and matrix products, attention included)
MAC_OPS = ("aten.convolution", "aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten._native_multi_head",
           "aten._scaled_dot_product", "aten._transformer_encoder")


def torchvision_builder_kwargs(name: str, weights) -> dict:
    """Build the architecture the weights describe, as torchvision's own builders do."""
    if name == "googlenet":
        # The published GoogLeNet count excludes the auxiliary heads (its builder drops them after loading);
        # Inception-v3's includes them (aux_logits=True, as weights=None builds it). The aux heads do not run in
        # eval, so MACs are the same either way.
        return {"aux_logits": False, "init_weights": False}
    if name.startswith("vit_"):
        return {"image_size": weights.meta["min_size"][0]}
    return {}


def torchvision_check(names: list[str] | None = None):
    """Count torchvision classification models (eval, no_grad, meta device, at the weights' crop size) and
    compare with ``weights.meta``: parameters must be equal; MACs within 1% of ``_ops`` (GFLOPS there counts MACs)
    or within its rounding to 3 decimals (0.0005 GMAC), which decides for the tiniest models."""
    import time

    import pandas as pd
    import torchvision

    rows = []
    for name in names or torchvision.models.list_models(module=torchvision.models):
        weights = torchvision.models.get_model_weights(name).DEFAULT
        crop = weights.transforms().crop_size[0]
        start = time.perf_counter()
        model = build_model(name, **torchvision_builder_kwargs(name, weights))
        counts = count_model(model, (torch.empty(1, 3, crop, crop, device="meta"),))
        macs, published = counts.macs_of(*MAC_OPS), weights.meta["_ops"] * 1e9
        rows.append({"model": name, "crop": crop, "params": counts.total_params,
                     "params_published": weights.meta["num_params"], "gmac": macs / 1e9,
                     "gmac_published": weights.meta["_ops"], "rel_diff": macs / published - 1,
                     "params_ok": counts.total_params == weights.meta["num_params"],
                     "macs_ok": abs(macs - published) <= max(0.01 * published, 0.0005e9),
                     "uncounted": ", ".join(sorted(counts.uncounted())), "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows)
