"""The probe's contact with the model (DESIGN §5): hooks that capture activations during the
scoring pass, unit ablations, attribution patching and the reward head's gradients. Everything
here touches torch; the statistics on what it returns live in probe_stats."""

from __future__ import annotations

import copy
import inspect
import os
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from benchmark.engine import collate, score_encoded
from benchmark.models.base import EncodedText, HeadFunction, ProbeSites
from benchmark.probe_stats import block_offsets, depth_plan

DEFAULT_BUDGET_BYTES = 2 * 1024 ** 3
ATTRIBUTION_TOKEN_BUDGET = {"cpu": 4096, "cuda": 32768}   # autograd keeps every activation alive
ATTRIBUTION_MAX_ROWS = 64
GRADIENT_CHUNK = 50
_NOT_ACTIVATIONS = {"Softmax", "Softmin", "LogSoftmax", "Softmax2d", "MultiheadAttention"}


def _tensor(value) -> torch.Tensor:
    """A module's hidden-state output: a tensor, a tuple led by one, or a ModelOutput."""
    return value if isinstance(value, torch.Tensor) else value[0]


# ---------------------------------------------------------------- where the paper's units are


@dataclass(frozen=True)
class ActivationSite:
    """Where the paper-compatible block reads its units: each block's activation module (its
    output is SiLU(gate) in gated MLPs, the GELU output in GPT-2 and BERT), or the down-projection
    input where no single activation module exists."""
    kind: str                            # "activation" | "down_projection_input"
    modules: tuple[torch.nn.Module, ...]
    description: str


def _is_activation(module: torch.nn.Module) -> bool:
    cls = type(module)
    return (cls.__module__ in ("transformers.activations", "torch.nn.modules.activation")
            and cls.__name__ not in _NOT_ACTIVATIONS and not any(True for _ in module.children()))


def activation_site(sites: ProbeSites) -> ActivationSite:
    found = []
    for block in sites.blocks:
        modules = [(name, m) for name, m in block.named_modules() if _is_activation(m)]
        if len(modules) != 1:
            break
        found.append(modules[0])
    if len(found) == sites.n_blocks and len({id(m) for _, m in found}) == sites.n_blocks:
        name, module = found[0]
        return ActivationSite("activation", tuple(m for _, m in found),
                              f"activation output: blocks.*.{name} ({type(module).__name__})")
    return ActivationSite("down_projection_input", tuple(sites.down_projections),
                          "down-projection input (no single activation module per block was found)")


# ---------------------------------------------------------------- capture during scoring


class _Stores:
    """Arrays for the capture: in the run cache when there is one (they survive a kill), else in
    memory up to a budget, then memory-mapped files under `cache_dir`."""

    def __init__(self, storage, cache_dir: Path | None, budget_bytes: int):
        self.storage, self.cache_dir, self.budget = storage, cache_dir, budget_bytes
        self.used = 0
        self.spilled: list[Path] = []

    def array(self, name: str, shape: tuple, dtype) -> np.ndarray:
        if self.storage is not None:
            return self.storage.array(name, shape, dtype)
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if self.used + size <= self.budget:
            self.used += size
            return np.zeros(shape, dtype=dtype)
        folder = Path(self.cache_dir or tempfile.gettempdir())
        folder.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix=f"probe-{name}-", suffix=".bin", dir=folder)
        os.close(fd)
        self.spilled.append(Path(path))
        return np.memmap(path, dtype=dtype, mode="w+", shape=shape)

    def remove(self) -> None:
        for path in self.spilled:
            path.unlink(missing_ok=True)
        self.spilled.clear()


class ActivationCapture:
    """Forward hooks for the scoring pass. At the reward token t*: the residual stream at each
    distinct probe layer and every block's MLP hidden units (the down-projection input). Over all
    non-pad tokens, per text: the sum of the MLP units (select-half texts; their means are what
    mean-ablation writes) and of the activation-site units (every text; the paper's measure).
    Stored in float32; sums are taken in float32 per text and accumulated in float64 later."""

    def __init__(self, sites: ProbeSites, lengths: Sequence[int], select_texts: Sequence[bool],
                 cache_dir: Path | None = None, budget_bytes: int = DEFAULT_BUDGET_BYTES, storage=None):
        self.sites = sites
        self.plan = depth_plan(sites.n_blocks)
        self.layers = [d.layer for d in self.plan]
        self.slot = {layer: i for i, layer in enumerate(self.layers)}
        self.units_per_block = [int(m) for m in sites.units_per_block]
        self.offsets = block_offsets(self.units_per_block)
        self.total_units = int(self.offsets[-1])
        self.lengths = np.asarray(lengths, dtype=np.int64)
        n_texts = len(self.lengths)
        self.activation = activation_site(sites)
        shared_site = self.activation.kind == "down_projection_input"
        select = np.asarray(select_texts, dtype=bool)
        # texts whose all-token MLP sums are kept: the select half (all texts when the paper reads
        # the same site, so one store serves both)
        self.sum_texts = np.arange(n_texts) if shared_site else np.flatnonzero(select)
        self._sum_row = np.full(n_texts, -1, dtype=np.int64)
        self._sum_row[self.sum_texts] = np.arange(len(self.sum_texts))
        self._stores = _Stores(storage, cache_dir, budget_bytes)
        self.residual = self._stores.array("residual", (n_texts, len(self.layers), sites.hidden_size), np.float32)
        self.units = self._stores.array("units", (n_texts, self.total_units), np.float32)
        self.unit_sums = self._stores.array("unit_sums", (len(self.sum_texts), self.total_units), np.float32)
        self.paper_sums = (self.unit_sums if shared_site else
                           self._stores.array("paper_sums", (n_texts, self.total_units), np.float32))
        self.paper_problem: str | None = None
        self._paper_seen: set[int] = set()   # blocks whose activation module ran in this batch
        self._rows: np.ndarray | None = None
        self._positions: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        self._handles: list = []
        self._shared_site = shared_site
        self.open()

    # -- hooks
    def _gather(self, hidden: torch.Tensor) -> np.ndarray:
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, self._positions].detach().float().cpu().numpy()

    def _token_sums(self, hidden: torch.Tensor) -> np.ndarray:
        """Per-row sums over the non-pad tokens (right padding: the first `length` positions)."""
        width = hidden.shape[1]
        if self._mask is None or self._mask.shape[1] != width or self._mask.device != hidden.device:
            lengths = torch.as_tensor(self.lengths[self._rows], device=hidden.device)
            self._mask = (torch.arange(width, device=hidden.device)[None, :] < lengths[:, None]).float()
        return torch.bmm(self._mask[:, None, :], hidden.detach().float())[:, 0].cpu().numpy()

    def open(self) -> None:
        """Attach the hooks (done on construction; again after close for a later pass)."""
        if not self._handles:
            self._register(self._shared_site)

    def rows(self, text_indices: np.ndarray) -> "_MappedObserver":
        """This capture as the observer of a pass over a subset of the texts."""
        return _MappedObserver(self, np.asarray(text_indices, dtype=np.int64))

    def _register(self, shared_site: bool):
        sites, n = self.sites, self.sites.n_blocks

        def store_residual(layer):
            def write(hidden):
                if self._rows is not None:
                    self.residual[self._rows, self.slot[layer]] = self._gather(hidden)
            return write

        if 0 in self.slot:
            write0 = store_residual(0)
            self._handles.append(sites.blocks[0].register_forward_pre_hook(
                lambda m, args, kwargs: write0(args[0] if args else kwargs["hidden_states"]), with_kwargs=True))
        for layer in self.layers:
            if 0 < layer < n:
                write = store_residual(layer)
                self._handles.append(sites.blocks[layer - 1].register_forward_hook(
                    lambda m, args, out, write=write: write(_tensor(out))))
        if n in self.slot:
            write_final = store_residual(n)
            self._handles.append(sites.final.register_forward_hook(lambda m, args, out: write_final(_tensor(out))))
        for block, module in enumerate(sites.down_projections):
            lo, hi = int(self.offsets[block]), int(self.offsets[block + 1])

            def write_units(m, args, lo=lo, hi=hi, block=block):
                if self._rows is None:
                    return
                if not shared_site and block not in self._paper_seen and not self.paper_problem:
                    self.paper_problem = f"block {block}'s activation module did not run before its down projection"
                hidden = args[0]
                self.units[self._rows, lo:hi] = self._gather(hidden)
                rows = self._sum_row[self._rows]
                keep = rows >= 0
                if keep.any():
                    sums = self._token_sums(hidden)
                    self.unit_sums[rows[keep], lo:hi] = sums[keep]
            self._handles.append(module.register_forward_pre_hook(write_units))
        if not shared_site:
            for block, module in enumerate(self.activation.modules):
                lo, hi = int(self.offsets[block]), int(self.offsets[block + 1])

                def write_paper(m, args, out, lo=lo, hi=hi, block=block):
                    if self._rows is None or self.paper_problem:
                        return
                    hidden = _tensor(out)
                    if hidden.dim() != 3 or hidden.shape[-1] != hi - lo:
                        self.paper_problem = (f"block {block}'s activation output has shape {tuple(hidden.shape)}, "
                                              f"not (batch, tokens, {hi - lo})")
                        return
                    self.paper_sums[self._rows, lo:hi] = self._token_sums(hidden)
                    self._paper_seen.add(block)
                self._handles.append(module.register_forward_hook(write_paper))

    # -- the engine's observer protocol
    def begin_batch(self, text_indices: np.ndarray, positions: torch.Tensor) -> None:
        self._rows, self._positions, self._mask = np.asarray(text_indices), positions, None
        self._paper_seen = set()

    def end_batch(self) -> None:
        self._rows = self._positions = self._mask = None

    def arrays(self):
        stores = [self.residual, self.units, self.unit_sums]
        return tuple(stores + ([self.paper_sums] if self.paper_sums is not self.unit_sums else []))

    # -- reading back
    def residual_at(self, layer: int) -> np.ndarray:
        return self.residual[:, self.slot[layer]]

    def unit_means(self, texts: np.ndarray) -> np.ndarray:
        """Mean of each MLP unit over all non-pad tokens of `texts` (float64)."""
        return self._means(self.unit_sums, self._sum_row, texts)

    def paper_means(self, texts: np.ndarray) -> np.ndarray:
        rows = self._sum_row if self.paper_sums is self.unit_sums else np.arange(len(self.lengths))
        return self._means(self.paper_sums, rows, texts)

    def _means(self, store: np.ndarray, row_of: np.ndarray, texts: np.ndarray) -> np.ndarray:
        texts = np.asarray(texts, dtype=np.int64)
        rows = row_of[texts]
        if (rows < 0).any():
            raise ValueError("internal error: token sums were not kept for some texts")
        total = np.zeros(store.shape[1], dtype=np.float64)
        for lo in range(0, len(rows), 256):
            total += store[rows[lo:lo + 256]].astype(np.float64).sum(axis=0)
        return total / float(self.lengths[texts].sum())

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def discard(self) -> None:
        self.close()
        for name in ("residual", "units", "unit_sums", "paper_sums"):
            setattr(self, name, None)
        self._stores.remove()


class _MappedObserver:
    """Passes a subset's batch indices on as indices into all texts."""

    def __init__(self, capture: ActivationCapture, text_indices: np.ndarray):
        self.capture, self.text_indices = capture, text_indices

    def begin_batch(self, indices: np.ndarray, positions: torch.Tensor) -> None:
        self.capture.begin_batch(self.text_indices[np.asarray(indices)], positions)

    def end_batch(self) -> None:
        self.capture.end_batch()

    def arrays(self):
        return self.capture.arrays()


# ---------------------------------------------------------------- unit edits


class UnitEdit:
    """Replace chosen units by fixed values at every position, for as long as the context is
    open: a pre-hook on the down projection (MLP hidden units) or a forward hook on the activation
    module (the paper's site)."""

    def __init__(self, modules: Sequence[torch.nn.Module], offsets: np.ndarray, units: np.ndarray,
                 values: np.ndarray, on_output: bool = False):
        self.handles = []
        units = np.asarray(units, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        for block, module in enumerate(modules):
            lo, hi = offsets[block], offsets[block + 1]
            local = (units >= lo) & (units < hi)
            if not local.any():
                continue
            index = torch.as_tensor(units[local] - lo, dtype=torch.long)
            fill = torch.as_tensor(values[local], dtype=torch.float64)

            def replace(x, index=index, fill=fill):
                x = x.clone()
                x[..., index.to(x.device)] = fill.to(device=x.device, dtype=x.dtype)
                return x

            if on_output:
                def hook(m, args, out, replace=replace):
                    if isinstance(out, torch.Tensor):
                        return replace(out)
                    return (replace(out[0]),) + tuple(out[1:])
                self.handles.append(module.register_forward_hook(hook))
            else:
                def pre_hook(m, args, replace=replace):
                    return (replace(args[0]),) + tuple(args[1:])
                self.handles.append(module.register_forward_pre_hook(pre_hook))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def mean_ablation(sites: ProbeSites, units: np.ndarray, means: np.ndarray) -> UnitEdit:
    offsets = block_offsets(sites.units_per_block)
    units = np.asarray(units, dtype=np.int64)
    return UnitEdit(sites.down_projections, offsets, units, np.asarray(means)[units])


def zero_ablation(site: ActivationSite, units_per_block: Sequence[int], units: np.ndarray) -> UnitEdit:
    return UnitEdit(site.modules, block_offsets(units_per_block), units, np.zeros(len(units)),
                    on_output=site.kind == "activation")


# ---------------------------------------------------------------- re-running the model


def _adapter_modules(adapter) -> list[torch.nn.Module]:
    return [v for v in vars(adapter).values() if isinstance(v, torch.nn.Module)]


class ModelRunner:
    """Re-runs the model on some of the scored texts: with unit edits (exact ablations), or with
    autograd for attribution patching."""

    def __init__(self, adapter, encoded: Sequence[EncodedText], batch_size: int | str = "auto", progress: bool = False):
        self.adapter, self.encoded, self.batch_size, self.progress = adapter, list(encoded), batch_size, progress
        self.sites = adapter.probe_sites()

    def rewards(self, texts: np.ndarray, edit: UnitEdit | None = None, desc: str = "probe",
                capture: ActivationCapture | None = None) -> np.ndarray:
        texts = np.asarray(texts, dtype=np.int64)
        subset = [self.encoded[i] for i in texts]
        observer = capture.rows(texts) if capture is not None else None
        with edit if edit is not None else nullcontext():
            return score_encoded(self.adapter, subset, self.batch_size, observer=observer, progress=self.progress,
                                 desc=desc).rewards

    def _batches(self, texts: np.ndarray) -> list[np.ndarray]:
        lengths = np.array([len(self.encoded[i].input_ids) for i in texts], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        budget = ATTRIBUTION_TOKEN_BUDGET["cuda" if self.adapter.device.type == "cuda" else "cpu"]
        batches, start = [], 0
        while start < len(order):
            rows = max(1, min(ATTRIBUTION_MAX_ROWS, budget // max(1, int(lengths[order[start]]))))
            batches.append(order[start:start + rows])
            start += rows
        return batches

    def attribution(self, texts: np.ndarray, means: np.ndarray,
                    capture: ActivationCapture | None = None) -> "Attribution | None":
        """Attribution patching (one backward pass per text, batched): for each text and unit j,
        Σ_pos (mean_j − a_j(pos))·∂r/∂a_j(pos) over its non-pad tokens, the linear estimate of what
        mean-ablating j does to the text's reward; with the texts' rewards from the same forward
        pass (which `capture` may observe, as the scoring pass). None when the adapter cannot
        backpropagate."""
        score = inspect.unwrap(type(self.adapter).score_batch)   # without its inference_mode wrapper
        texts = np.asarray(texts, dtype=np.int64)
        sites = self.sites
        offsets = block_offsets(sites.units_per_block)
        out = np.zeros((len(texts), int(offsets[-1])), dtype=np.float64)
        rewards = np.full(len(texts), np.nan, dtype=np.float64)
        saved = [(p, p.requires_grad) for m in _adapter_modules(self.adapter) for p in m.parameters()]
        state: dict = {}

        def pre_hook(m, args, block):
            x = args[0]
            if not x.requires_grad:          # the first block: nothing upstream needs a gradient
                x = x.detach().requires_grad_(True)
            values = x.detach()
            mean = torch.as_tensor(means[offsets[block]:offsets[block + 1]], dtype=torch.float64, device=x.device)

            def on_grad(grad, values=values, mean=mean):
                # Σ_pos (mean − a)·g = mean·Σ_pos g − Σ_pos a·g; per-text sums in (at least) float32
                dtype = torch.float64 if grad.dtype == torch.float64 else torch.float32
                masked = grad.to(dtype) * state["mask"][: grad.shape[0], : grad.shape[1], None].to(dtype)
                total, weighted = masked.sum(dim=1).double(), (masked * values.to(dtype)).sum(dim=1).double()
                out[state["rows"], offsets[block]:offsets[block + 1]] = (mean * total - weighted).cpu().numpy()
            x.register_hook(on_grad)
            return (x,) + tuple(args[1:])

        handles = [module.register_forward_pre_hook(lambda m, a, b=b: pre_hook(m, a, b))
                   for b, module in enumerate(sites.down_projections)]
        try:
            for p, _ in saved:
                p.requires_grad_(False)      # gradients for activations only: no weight gradients
            for batch_rows in self._batches(texts):
                encoded = [self.encoded[i] for i in texts[batch_rows]]
                batch = collate(encoded, self.adapter.pad_token_id, self.adapter.device)
                lengths = torch.tensor([len(e.input_ids) for e in encoded], device=self.adapter.device)
                width = batch.input_ids.shape[1]
                state["rows"] = batch_rows
                state["mask"] = (torch.arange(width, device=self.adapter.device)[None, :] < lengths[:, None]).float()
                if capture is not None:
                    capture.begin_batch(texts[batch_rows], batch.reward_positions)
                try:
                    with torch.inference_mode(False), torch.enable_grad():
                        reward = score(self.adapter, batch)
                        if not isinstance(reward, torch.Tensor) or not reward.requires_grad:
                            return None
                        reward.sum().backward()
                except RuntimeError:
                    return None
                finally:
                    if capture is not None:
                        capture.end_batch()
                rewards[batch_rows] = reward.detach().to(torch.float64).cpu().numpy()
        finally:
            for handle in handles:
                handle.remove()
            for p, flag in saved:
                p.requires_grad_(flag)
        return Attribution(out, rewards)


@dataclass(frozen=True)
class Attribution:
    effects: np.ndarray          # (texts, units): linear reward change of mean-ablating each unit
    rewards: np.ndarray          # (texts,): the unablated rewards from the same forward pass


# ---------------------------------------------------------------- the reward head


def _double_head(head: HeadFunction) -> torch.nn.Module:
    module = copy.deepcopy(head.module).double().eval()
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def head_rewards(head: HeadFunction, hidden: np.ndarray) -> np.ndarray:
    module = _double_head(head)
    with torch.no_grad():
        return head.apply(module, torch.as_tensor(np.asarray(hidden), dtype=torch.float64)).numpy()


def head_gradients(head: HeadFunction, h_chosen: np.ndarray, h_rejected: np.ndarray,
                   weights: np.ndarray, chunk: int = GRADIENT_CHUNK):
    """For each row w of `weights` (per pair), g(w) = −∇θ [Σ_i w_i·(−log σ(m_i)) / Σ_i w_i], θ = the
    head's parameters, m_i = r(chosen_i) − r(rejected_i); yields (rows, g) chunks in float64.
    Bootstrap resamples are such weight rows, so each is one batched vector–Jacobian product."""
    module = _double_head(head)
    params = list(module.parameters())
    with torch.enable_grad():
        margin = head.apply(module, torch.as_tensor(np.asarray(h_chosen), dtype=torch.float64)) - \
            head.apply(module, torch.as_tensor(np.asarray(h_rejected), dtype=torch.float64))
        loss = torch.nn.functional.softplus(-margin)        # −log σ(m), per pair
        weights = np.asarray(weights, dtype=np.float64)
        for lo in range(0, len(weights), chunk):
            rows = weights[lo:lo + chunk]
            vectors = torch.as_tensor(rows / rows.sum(axis=1, keepdims=True), dtype=torch.float64)
            grads = torch.autograd.grad(loss, params, grad_outputs=vectors, is_grads_batched=True,
                                        retain_graph=True, allow_unused=True)
            flat = [(-g if g is not None else torch.zeros((len(rows),) + p.shape, dtype=torch.float64))
                    .reshape(len(rows), -1) for g, p in zip(grads, params)]
            yield np.arange(lo, lo + len(rows)), torch.cat(flat, dim=1).detach().numpy()


@dataclass(frozen=True)
class TextGradients:
    """Per text t, the gradient ∇θ r_t of the reward w.r.t. the head's parameters θ, kept as what
    cosines of their weighted sums need: the Gram matrix ∇r_t·∇r_u and the products ∇r_t·θ."""
    rewards: np.ndarray
    gram: np.ndarray
    theta_dot: np.ndarray
    theta_norm: float


def head_text_gradients(head: HeadFunction, hidden: np.ndarray) -> TextGradients | None:
    """Exact per-text gradient products without forming the gradients: in a linear layer
    y = Wx + b, ∇_W r = g ⊗ x and ∇_b r = g with g = ∂r/∂y, so ∇r_t·∇r_u = Σ_layers (g_t·g_u)(x_t·x_u + 1)
    and ∇r_t·θ = Σ_layers g_t·y_t. None when the head owns parameters outside linear layers, or a
    layer sees more than one row per text (then head_gradients does it the long way)."""
    module = _double_head(head)
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    owned = {id(p) for m in linears for p in m.parameters(recurse=False)}
    if any(id(p) not in owned for p in module.parameters()):
        return None
    seen: dict[int, dict] = {}

    def forward_hook(m, args, out):
        record = seen.setdefault(id(m), {"calls": 0, "bias": m.bias is not None})
        record["calls"] += 1
        record["x"], record["y"] = args[0].detach(), out.detach()
        out.register_hook(lambda g, record=record: record.__setitem__("g", g.detach()))

    handles = [m.register_forward_hook(forward_hook) for m in linears]
    try:
        with torch.enable_grad():
            rewards = head.apply(module, torch.as_tensor(np.asarray(hidden), dtype=torch.float64))
            rewards.sum().backward()
    finally:
        for handle in handles:
            handle.remove()
    n = len(hidden)
    gram, theta_dot = torch.zeros((n, n), dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for record in seen.values():
        if record["calls"] != 1 or "g" not in record or record["x"].numel() != n * record["x"].shape[-1]:
            return None
        x, y, g = (record[k].reshape(n, -1) for k in ("x", "y", "g"))
        gram += (g @ g.T) * (x @ x.T + (1.0 if record["bias"] else 0.0))
        theta_dot += (g * y).sum(dim=1)
    theta = float(np.linalg.norm(head_parameters(head)))
    return TextGradients(rewards.detach().numpy(), gram.numpy(), theta_dot.numpy(), theta)


def head_parameters(head: HeadFunction) -> np.ndarray:
    return torch.cat([p.detach().double().reshape(-1) for p in head.module.parameters()]).cpu().numpy()
