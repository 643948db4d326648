"""Saving and loading trained models (state dict + config JSON) and a cache keyed by the
training configuration, so experiments can re-attack a model without retraining it.

A saved model is a folder holding ``model.pt`` (the state dict), ``config.json`` (what is
needed to rebuild the module: ``kind`` and its constructor arguments, plus the training
configuration) and optionally ``result.json`` (the :class:`~randadv.train.lazy.TrainResult`).
Files are written to a temporary name and renamed, so a folder is complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from randadv.errors import StoreError
from randadv.train.lazy import LazyTwoLayerNet
from randadv.train.lazy_deep import LazyDeepNet

FORMAT_VERSION = 1

# kind -> constructor from the saved "model" arguments
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "lazy_two_layer": lambda **kw: LazyTwoLayerNet(**kw),
    "lazy_deep": lambda **kw: LazyDeepNet(**kw),
}


def model_kind(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """``(kind, constructor arguments)`` of a model randadv can save."""
    if isinstance(model, LazyTwoLayerNet):
        return "lazy_two_layer", model.config()
    if isinstance(model, LazyDeepNet):
        return "lazy_deep", model.config()
    raise StoreError(f"cannot save a {type(model).__name__}: unknown model kind")


def config_key(config: Mapping[str, Any]) -> str:
    """A short stable hash of a JSON-able training configuration (the cache key).

    Paper:
        none (utility: the cache key of a training configuration).

    Arguments:
        config: JSON-able mapping.

    Returns:
        The key (hex string).

    Example:
        >>> from randadv.train import config_key
        >>> key = config_key({"a": 1, "b": 2})
        >>> key == config_key({"b": 2, "a": 1}), key == config_key({"a": 1})
        (True, False)
    """
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(blob, digest_size=10).hexdigest()


def load_tensors_only(path: str | os.PathLike[str],
                      map_location: torch.device | str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain values only, so a file from a
    results folder someone hands you cannot run code when it is read; anything else raises
    :class:`StoreError` naming the file."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, AttributeError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreError(f"{path} holds more than tensors and plain values (or is damaged); "
                         f"refused to load it: {first}") from None


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(model: nn.Module, folder: str | os.PathLike[str],
               train_config: Mapping[str, Any] | None = None,
               result: Mapping[str, Any] | None = None) -> Path:
    """Write ``model.pt`` + ``config.json`` (+ ``result.json``) into ``folder``.

    Paper:
        none (utility: trained models on disk).

    Arguments:
        model: a randadv model (its ``config`` rebuilds it); folder: created if missing;
        train_config: the training configuration; result: the training result.

    Returns:
        The folder.

    Example:
        >>> import tempfile
        >>> from randadv.train import LazyTwoLayerNet, save_model
        >>> folder = save_model(LazyTwoLayerNet(4, 8), tempfile.mkdtemp() + "/m", {"lr": 0.1})
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'model.pt']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kind, args = model_kind(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    config = dict(format=FORMAT_VERSION, kind=kind, model=args, dtype=dtype,
                  train=dict(train_config or {}))
    _atomic_write(folder / "model.pt", lambda p: torch.save(state, p))
    if result is not None:
        _atomic_write(folder / "result.json",
                      lambda p: p.write_text(json.dumps(dict(result), default=float)))
    # config.json last: its presence marks a complete folder
    _atomic_write(folder / "config.json",
                  lambda p: p.write_text(json.dumps(config, sort_keys=True, indent=1)))
    return folder


def load_model(folder: str | os.PathLike[str],
               device: torch.device | str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model; returns ``(model, config)`` (``config["result"]`` if saved).

    Paper:
        none (utility: trained models on disk).

    Arguments:
        folder: written by :func:`save_model`; device: where to load it.

    Returns:
        ``(model, config)``.

    Example:
        >>> import tempfile
        >>> import torch
        >>> from randadv.train import LazyTwoLayerNet, load_model, save_model
        >>> net = LazyTwoLayerNet(4, 8, seed=1)
        >>> folder = save_model(net, tempfile.mkdtemp() + "/m")
        >>> again, config = load_model(folder)
        >>> x = torch.randn(2, 4)
        >>> torch.equal(again(x), net(x))
        True
    """
    folder = Path(folder)
    cfg_path, pt = folder / "config.json", folder / "model.pt"
    if not cfg_path.is_file() or not pt.is_file():
        raise StoreError(f"no saved model in {folder} (config.json and model.pt needed)")
    try:
        config = json.loads(cfg_path.read_text())
        builder = BUILDERS[config["kind"]]
        model = builder(**config["model"])
        model.to(getattr(torch, config.get("dtype", "float32")))
        state = load_tensors_only(pt, "cpu")
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as e:
        raise StoreError(f"cannot load the model saved in {folder}: {e}") from e
    res = folder / "result.json"
    if res.is_file():
        config["result"] = json.loads(res.read_text())
    return model.to(device) if device is not None else model, config


def _same_train(saved: Mapping[str, Any], config: Mapping[str, Any]) -> bool:
    """A saved model's training config equals ``config`` (compared as JSON)."""
    return json.loads(json.dumps(saved.get("train"), default=str)) == \
        json.loads(json.dumps(dict(config), default=str))


class ModelCache:
    """Trained models under ``root/<config_key>/``; ``root=None`` disables caching.

    Paper:
        none (utility: trained models are trained once and reused).

    Arguments:
        root: the cache folder, or None.

    Example:
        >>> import tempfile
        >>> from randadv.train import LazyTwoLayerNet, ModelCache
        >>> cache = ModelCache(tempfile.mkdtemp())
        >>> config = {"d": 4, "m": 8, "seed": 0}
        >>> def train():
        ...     return LazyTwoLayerNet(4, 8), {"acc": 1.0}
        >>> model, result = cache.get_or_train(config, None, train)
        >>> cached, saved = cache.get(config)
        >>> saved["result"], type(cached).__name__
        ({'acc': 1.0}, 'LazyTwoLayerNet')
    """

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(root) if root else None

    def folder(self, config: Mapping[str, Any]) -> Path | None:
        return self.root / config_key(config) if self.root is not None else None

    def get(self, config: Mapping[str, Any], device: torch.device | str | None = None
            ) -> tuple[nn.Module, dict[str, Any]] | None:
        """The cached model for ``config`` (verified equal), or None."""
        folder = self.folder(config)
        if folder is None or not (folder / "config.json").is_file():
            return None
        try:
            model, saved = load_model(folder, device)
        except StoreError:
            return None
        if not _same_train(saved, config):
            return None
        return model, saved

    def has(self, config: Mapping[str, Any]) -> bool:
        """Whether a complete copy for ``config`` with a training result is cached (what
        :meth:`get_or_train` would load instead of training), read from its ``config.json``
        without loading the model."""
        folder = self.folder(config)
        if folder is None or not (folder / "config.json").is_file() \
                or not (folder / "model.pt").is_file() or not (folder / "result.json").is_file():
            return False
        try:
            saved = json.loads((folder / "config.json").read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return _same_train(saved, config)

    def get_or_train(self, config: Mapping[str, Any], device: torch.device | str | None,
                     train: Callable[[], tuple[nn.Module, Mapping[str, Any]]]
                     ) -> tuple[nn.Module, dict[str, Any]]:
        """The model trained with ``config`` and its training result: from the cache when a
        verified copy with a result is there, else ``train()`` (which returns ``(model,
        result)``), stored before it is returned. The one train-or-load path of the
        experiments."""
        hit = self.get(config, device)
        if hit is not None and "result" in hit[1]:
            return hit[0], hit[1]["result"]
        model, result = train()
        self.put(model, config, result)
        return model, dict(result)

    def put(self, model: nn.Module, config: Mapping[str, Any],
            result: Mapping[str, Any] | None = None) -> Path | None:
        folder = self.folder(config)
        if folder is None:
            return None
        return save_model(model, folder, config, result)
