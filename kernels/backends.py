"""What runs an op, where its cost depends on more than its shapes (kernels.count records it per op as
``OpRecord.variant``; the predictor prices the op among measured points of the same variant)."""
from __future__ import annotations

import torch


def op_variant(packet, args, target: str) -> str:
    """What runs an op where its cost depends on more than its shapes, so that the predictor prices it from
    measured points of the same kind:
    - a convolution on a CPU: the backend torch picks for it (``torch._C._select_conv_backend``, asked with empty
      CPU tensors of the op's shapes, strides and dtype on meta): at batch 1, small inputs of dense convolutions
      with small kernels go to an im2col path ("Slow2d") that ran 1.3-1.5x slower than oneDNN ("Mkldnn") at the
      same shape on a 2-core Zen 5 VM (2026-12-03); the rule is torch's and changes with its versions, so it is
      asked, not copied;
    - a batch norm in training form ("train": it computes the batch's statistics, as weight standardisation does
      on every call even in an eval model): 4-11x an eval batch norm of the same size on that VM.
    "" where neither applies, or where torch cannot say (an older torch without the call)."""
    aten = torch.ops.aten
    try:
        if packet is aten.convolution and len(args) >= 9 and target == "cpu":
            x, w, b = args[0], args[1], args[2]
            if not (isinstance(x, torch.Tensor) and isinstance(w, torch.Tensor)) or x.device.type not in ("cpu", "meta"):
                return ""

            def cpu(t):
                return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype) if isinstance(t, torch.Tensor) else t

            backend = torch._C._select_conv_backend(cpu(x), cpu(w), cpu(b), *args[3:9])
            return str(backend).rsplit(".", 1)[-1]
        if packet is aten.native_batch_norm and len(args) >= 6:
            return "train" if args[5] else ""
    except (AttributeError, RuntimeError, TypeError):  # no such call in this torch, or a shape it refuses
        return ""
    return ""
