"""Export a fitted linear quantizer as plain arrays or as an ONNX graph, for use outside hashlearn.

Every quantizer of the form ``codes = sgn(preprocess(x) R)`` (``sign``, ``lsh``, ``pcah``,
``itq``, the ``h2q`` family, ``random-rotation``, ``cca-itq``) is, bit for bit, a centring and
one matrix product followed by a sign::

    codes = np.packbits((X - mean) @ W > 0, axis=1)

with ``W = components @ rotation`` (d × k). H²Q's row rescaling multiplies a row by a positive
number, which changes no sign, so it drops out. :func:`linear_form` computes ``(mean, W)``;
:func:`export_npy` writes them as ``.npy`` files and :func:`export_onnx` as an ONNX graph
(Sub, MatMul, Greater, bit packing to ``uint8``) that a vector database's ingestion pipeline or
any ONNX runtime can run. Bits follow :mod:`hashlearn.codes` (NumPy's ``packbits`` order: bit 0 is
the most significant bit of byte 0) and a projection of exactly 0 gives a 0 bit, as in ``encode``.

The exported arrays are float32 (what databases and runtimes take); ``encode`` computes in float64,
so a projection within float32 rounding of 0 (|z| ≲ 1e-6 |x| |W|) may flip. Kernel methods
(``ksh``, ``sdh``, ``fsdh``, ``ssah``) are not linear in ``x`` and are refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from hashlearn import __version__
from hashlearn._io import save_npy, write_bytes_atomic, write_json_atomic
from hashlearn._validation import HashlearnInputError
from hashlearn.codes import n_bytes_for

__all__ = ["linear_form", "export_npy", "export_onnx", "onnx_model", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("npy", "onnx")
#: ONNX opset and IR version of the graph: opset 13 (2021) runs on every onnxruntime since 1.7.
ONNX_OPSET, ONNX_IR_VERSION = 13, 7


def linear_form(model: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, W)``, float32 of shapes (d,) and (d, k), with ``encode(X)`` equal to
    ``np.packbits((X - mean) @ W > 0, axis=1)`` up to float32 rounding near 0.

    Raises :class:`HashlearnInputError` for a model whose codes are not a sign of a linear map.
    """
    from hashlearn.quantize.rotation import RotationQuantizer
    from hashlearn.quantize.sign import SignQuantizer
    from hashlearn.shallow.cca_itq import CCAITQ

    name = getattr(model, "method_name", type(model).__name__)
    check_is_fitted(model)
    d = int(model.n_features_in_)
    if isinstance(model, SignQuantizer):
        mean, W = model.mean_, model.components_
    elif isinstance(model, RotationQuantizer):
        mean = model.mean_ if model.mean_ is not None else np.zeros(d)
        components = model.components_
        W = model.rotation_ if components is None else components @ model.rotation_
    elif isinstance(model, CCAITQ):
        mean, W = model.mean_, model.projection_
    else:
        raise HashlearnInputError(
            f"method {name!r} is not a linear projection followed by a sign (its codes come from "
            "a kernel or a network), so it has no (mean, matrix) form to export; export a sign, "
            "lsh, pcah, itq, h2q*, random-rotation or cca-itq model."
        )
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    W = np.asarray(W, dtype=np.float64)
    if mean.shape != (d,) or W.ndim != 2 or W.shape[0] != d:
        raise HashlearnInputError(
            f"model {name!r} has a mean of shape {mean.shape} and a projection of shape "
            f"{W.shape}, which do not fit its {d} input features; refit it."
        )
    mean32, W32 = mean.astype(np.float32), W.astype(np.float32)
    if not (np.isfinite(mean32).all() and np.isfinite(W32).all()):
        raise HashlearnInputError(
            f"model {name!r} has mean or projection entries beyond float32's range (~3e38); "
            "rescale the features before fitting, then export."
        )
    return mean32, W32


def _metadata(model: Any, W: np.ndarray) -> dict[str, Any]:
    return {
        "hashlearn_version": __version__,
        "method": getattr(model, "method_name", type(model).__name__),
        "n_features": int(W.shape[0]),
        "n_bits": int(W.shape[1]),
        "n_bytes": n_bytes_for(W.shape[1]),
        "codes": "np.packbits((X - mean) @ W > 0, axis=1)  # uint8, big-endian bit order",
    }


def export_npy(model: Any, folder: str | os.PathLike) -> dict[str, str]:
    """Write ``mean.npy`` (d,), ``projection.npy`` (d, k) and ``export.json`` into ``folder``.

    Each file is written atomically; ``export.json`` (method, sizes, the recipe) comes last.
    Returns the paths written.
    """
    mean, W = linear_form(model)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise HashlearnInputError(
            f"{folder} is a file; --format npy writes a folder (mean.npy, projection.npy, "
            "export.json): pass a folder path."
        )
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "mean": str(folder / "mean.npy"),
        "projection": str(folder / "projection.npy"),
        "metadata": str(folder / "export.json"),
    }
    save_npy(paths["mean"], mean)
    save_npy(paths["projection"], W)
    write_json_atomic(paths["metadata"], _metadata(model, W))
    return paths


def onnx_model(model: Any) -> Any:
    """The ONNX graph ``x (n, d) float32 -> codes (n, ceil(k/8)) uint8, projections (n, k)``.

    ``projections`` is ``(x - mean) @ W`` (the pre-rotated float vectors, e.g. for a database's
    own binary quantization or for rescoring); ``codes`` packs its signs as ``np.packbits`` does:
    the k bits are padded with zeros to a multiple of 8, reshaped to (n, bytes, 8), weighted by
    128, 64, ..., 1 and summed (exact in float32: at most 255).
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ModuleNotFoundError:
        raise HashlearnInputError(
            "ONNX export needs the onnx package: pip install 'hashlearn[export]' (or pip install "
            "onnx onnxruntime)."
        ) from None
    mean, W = linear_form(model)
    d, k = W.shape
    n_bytes = n_bytes_for(k)

    def const(name: str, array: np.ndarray) -> Any:
        return numpy_helper.from_array(np.ascontiguousarray(array), name=name)

    initializers = [
        const("mean", mean),
        const("projection", W),
        const("zero", np.zeros((), dtype=np.float32)),
        const("pads", np.array([0, 0, 0, 8 * n_bytes - k], dtype=np.int64)),
        const("byte_shape", np.array([0, n_bytes, 8], dtype=np.int64)),
        const("bit_weights", (2.0 ** np.arange(7, -1, -1)).astype(np.float32)),
        const("last_axis", np.array([2], dtype=np.int64)),
    ]
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("MatMul", ["centred", "projection"], ["projections"]),
        helper.make_node("Pad", ["projections", "pads"], ["padded"], mode="constant"),
        helper.make_node("Greater", ["padded", "zero"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["bits"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["bits", "byte_shape"], ["bit_groups"]),
        helper.make_node("Mul", ["bit_groups", "bit_weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "last_axis"], ["byte_values"], keepdims=0),
        helper.make_node("Cast", ["byte_values"], ["codes"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes,
        "hashlearn_encode",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", d])],
        [
            helper.make_tensor_value_info("codes", TensorProto.UINT8, ["n", n_bytes]),
            helper.make_tensor_value_info("projections", TensorProto.FLOAT, ["n", k]),
        ],
        initializer=initializers,
    )
    proto = helper.make_model(
        graph,
        producer_name="hashlearn",
        producer_version=__version__,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
    )
    proto.ir_version = ONNX_IR_VERSION
    helper.set_model_props(proto, {key: str(v) for key, v in _metadata(model, W).items()})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Any, path: str | os.PathLike) -> str:
    """Write :func:`onnx_model` of ``model`` to ``path`` (``.onnx``) atomically; return the path."""
    proto = onnx_model(model)
    if Path(path).is_dir():
        raise HashlearnInputError(f"{path} is a folder; --format onnx writes one file (.onnx).")
    write_bytes_atomic(path, proto.SerializeToString())
    return str(path)


def export_model(model: Any, fmt: str, output: str | os.PathLike) -> dict[str, Any]:
    """Export ``model`` in format ``fmt`` (``"npy"`` or ``"onnx"``) to ``output``; a summary."""
    if fmt not in EXPORT_FORMATS:
        raise HashlearnInputError(
            f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}."
        )
    files = export_npy(model, output) if fmt == "npy" else {"onnx": export_onnx(model, output)}
    _, W = linear_form(model)
    return {"format": fmt, "files": files, **_metadata(model, W)}
