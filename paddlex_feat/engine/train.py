"""Global.mode=train: the PP-ShiTuV2 metric-learning recipe, with checkpoints, resume and eval.

Reads top to bottom: ``run`` picks one process or paddle.distributed workers; ``train`` prepares
a :class:`TrainRun` (data -> model -> optimiser -> resume), then runs epochs, and after each epoch
the epoch hooks (evaluate, record, save, export best, result file) in that order; after the last
the curves are plotted. Each hook is a small object with ``after_epoch(run, record)`` and
``after_train(run)``: the loop knows none of them.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import paddle
import yaml

from ..data.augment import TrainTransform
from ..data.lists import ListEntry, no_query_can_match, read_list
from ..data.sampler import PKBatchSampler
from ..data.train_data import TrainDataset, build_label_dict, check_num_classes
from ..models import build_model, get_model_info
from ..utils.device import gpu_count, parse_device, set_device
from ..utils.errors import DatasetError, PaddlexFeatError
from ..utils.io import atomic_target, atomic_write_json, atomic_write_text, staged_folder
from ..utils.logger import logger, progress
from ..utils.signals import die_with_parent, worker_init_for
from .checkpoint import (
    RESUME_KEY,
    copy_checkpoint,
    facts_states,
    read_facts,
    read_optimizer_state,
    read_weights,
    restore_optimizer_state,
    save_checkpoint,
    verify_checkpoint,
)
from .export import export_inference
from .losses import arcmargin_cross_entropy, smoothed_cross_entropy, triplet_angular_margin_loss
from .optim import build_optimizer, build_schedule

MAX_UNREADABLE_FRACTION = 0.01
KEEP_LAST = 5  # train_result.json's last_1..last_5, as in PaddleX


def run(cfg: dict) -> dict:
    """Train ``Global.model`` on ``Global.dataset_dir``; returns train_result.json's content."""
    kind, ids = parse_device(cfg["Global"]["device"])
    gpus = gpu_count()
    if kind == "gpu" and len(ids) > 1 and gpus >= 2:
        usable = [i for i in ids if i < gpus]
        logger.info(f"Starting data-parallel training on GPUs {usable} with paddle.distributed.")
        return _launch_distributed(cfg, len(usable), backend="nccl", gpus=",".join(map(str, usable)))
    processes = cfg["Train"]["cpu_processes"]
    if (kind == "cpu" or gpus == 0) and processes > 1:
        logger.info(
            f"Starting {processes} data-parallel CPU processes (gloo); each takes 1/{processes} of a batch."
        )
        return _launch_distributed(cfg, processes, backend="gloo")
    return train(cfg)


def train(cfg: dict) -> dict:
    """The training loop of one process (rank 0 writes every file)."""
    run = prepare_run(cfg)
    hooks = epoch_hooks(run)
    for epoch in range(run.state["epoch"] + 1, run.epochs + 1):
        paddle.seed(run.seed + epoch)  # dropout noise depends on the epoch only, so resume is exact
        record = {"epoch": epoch, **train_one_epoch(run, epoch)}
        run.state["epoch"] = epoch
        for hook in hooks:
            hook.after_epoch(run, record)
        wait_for_main_process(run, epoch)
    if run.world > 1:
        paddle.distributed.barrier()
    if not run.is_main:
        return {"done_flag": True}
    for hook in hooks:
        hook.after_train(run)
    return train_result(run, done=True)


def wait_for_main_process(run: TrainRun, epoch: int) -> None:
    """Hold the other processes until rank 0 has evaluated and saved this epoch.

    They wait on the launcher's TCP store, not in the next gloo all-reduce: gloo gives up after
    30 s (gloo::TimeoutException, SIGABRT), and rank 0's evaluation takes longer than that on a
    loaded CPU. The store waits up to its own timeout (900 s).
    """
    if run.world == 1:
        return
    from paddle.base import core

    store = core.create_or_get_global_tcp_store()
    key = f"paddlex_feat/epoch_done/{epoch}"
    if run.is_main:
        store.set(key, b"1")
    else:
        store.wait(key)


# --- what one training process holds


@dataclass
class TrainData:
    """The lists, the training dataset and its sampler."""

    root: str
    train_entries: list[ListEntry]
    label_dict: dict[int, int]
    num_classes: int
    gallery: list[ListEntry]
    query: list[ListEntry]
    dataset: TrainDataset
    sampler: PKBatchSampler

    @property
    def can_eval(self) -> bool:
        return bool(self.gallery) and bool(self.query)


@dataclass
class TrainRun:
    """Everything the loop and its hooks share: config, data, model, optimiser and loop state."""

    cfg: dict
    device: str
    rank: int
    world: int
    input_size: int
    data: TrainData
    model: paddle.nn.Layer
    step_model: paddle.nn.Layer  # what the steps call: TrainingForward, maybe static, maybe DataParallel
    optimizer: paddle.optimizer.Optimizer
    schedule: Any
    scaler: paddle.amp.GradScaler | None
    state: dict = field(default_factory=lambda: new_loop_state())
    unreadable: set[int] = field(default_factory=set)

    @property
    def output(self) -> Path:
        return Path(self.cfg["Global"]["output"])

    @property
    def model_name(self) -> str:
        return self.cfg["Global"]["model"]

    @property
    def seed(self) -> int:
        return self.cfg["Global"]["seed"]

    @property
    def epochs(self) -> int:
        return self.cfg["Train"]["epochs_iters"]

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def new_loop_state() -> dict:
    """The loop state a fresh run starts from (and a checkpoint's .pdstates restores)."""
    return {
        "epoch": 0,
        "global_step": 0,
        "best_score": -1.0,
        "best_epoch": 0,
        "history": [],
        "saved_epochs": [],
    }


# --- preparing a run


def prepare_run(cfg: dict) -> TrainRun:
    """Device, data, model, optimiser and (with Train.resume_path) the restored state; logs the plan."""
    device, rank, world = _start_process(cfg)
    t = cfg["Train"]
    info = get_model_info(cfg["Global"]["model"])
    input_size = t["input_size"] or info.input_size
    data = build_train_data(cfg, input_size, rank, world)
    paddle.seed(cfg["Global"]["seed"])
    model = build_model(cfg["Global"]["model"], data.num_classes)
    if t["pretrain_weight_path"] and not t["resume_path"]:
        from ..models.weights import load_weights

        load_weights(model, t["pretrain_weight_path"], config_key="Train.pretrain_weight_path")
    schedule = build_schedule(t["learning_rate"], t["epochs_iters"], len(data.sampler), t["warmup_steps"])
    optimizer = build_optimizer(model, schedule)
    amp = t["amp"] and device.startswith("gpu")
    if t["amp"] and not amp:
        logger.info("Train.amp=True is ignored on the CPU.")
    step_model = TrainingForward(model)
    if t["dy2st"]:
        step_model = paddle.jit.to_static(step_model, full_graph=True)
    if world > 1:
        step_model = paddle.DataParallel(step_model)
    run = TrainRun(
        cfg=cfg, device=device, rank=rank, world=world, input_size=input_size, data=data, model=model,
        step_model=step_model, optimizer=optimizer, schedule=schedule,
        scaler=paddle.amp.GradScaler(init_loss_scaling=1024) if amp else None,
    )  # fmt: skip
    if t["resume_path"]:
        run.state, source_run = _resume(t["resume_path"], run)
        logger.info(
            f"Resumed from {t['resume_path']} after epoch {run.state['epoch']} (step {run.state['global_step']})."
        )
        if run.is_main:
            _carry_metrics(run, source_run)
    if run.is_main:
        _write_run_files(run)
    logger.info(
        f"Training {run.model_name} on {device} x{world}: {len(data.train_entries)} images, "
        f"{data.num_classes} classes, input {input_size}, batch {_batch_text(t['batch_size'], data, world, device)}, "
        f"{len(data.sampler)} iterations/epoch, {run.epochs} epochs."
    )
    return run


def _batch_text(asked: int, data: TrainData, world: int, device: str) -> str:
    """The batch as the user set it, and each process's share: "64 (32 per process x 2)"."""
    share = data.sampler.batch_size
    if world == 1:
        return str(share)
    if device.startswith("gpu"):  # Train.batch_size is per card, as in PaddleX
        return f"{share * world} ({share} per card x {world})"
    return f"{asked} ({share} per process x {world})"


def _start_process(cfg: dict) -> tuple[str, int, int]:
    """(device, rank, world size); a spawned worker also sets up logging and the process group."""
    g = cfg["Global"]
    rank, world = paddle.distributed.get_rank(), paddle.distributed.get_world_size()
    if world == 1:
        return set_device(g["device"]), rank, world
    die_with_parent()  # a spawned training process must not outlive a killed launcher
    _setup_worker_logging(Path(g["output"]), rank)
    device = "cpu" if g["device"] == "cpu" else f"gpu:{paddle.distributed.ParallelEnv().dev_id}"
    paddle.set_device(device)
    paddle.distributed.init_parallel_env()
    return device, rank, world


def build_train_data(cfg: dict, input_size: int, rank: int, world: int) -> TrainData:
    """Read the lists, relabel, and build the augmented dataset with its P x K sampler."""
    g, t = cfg["Global"], cfg["Train"]
    root = g["dataset_dir"]
    if not os.path.isdir(root):
        raise DatasetError(
            f"Global.dataset_dir={root!r} does not exist. Point it at a ShiTuRecDataset folder."
        )
    entries = read_list(root, "train")
    label_dict = build_label_dict(entries) if t["relabel"] else {e.label: e.label for e in entries}
    num_classes = check_num_classes(t["num_classes"], entries, t["relabel"])
    gallery = read_list(root, "gallery", required=False)
    query = read_list(root, "query", required=False)
    if not (gallery and query):
        logger.info("No gallery/query lists: no evaluation; the best model is the last epoch's.")
    elif reason := no_query_can_match(query, gallery):  # checked before the first step, not after an epoch
        logger.warning(f"{reason}. Training goes on without evaluation; the best model is the last epoch's.")
        gallery, query = [], []
    info = get_model_info(g["model"])
    transform = TrainTransform(input_size, info.mean, info.std, info.interpolation)
    dataset = TrainDataset(entries, root, label_dict, transform, seed=g["seed"])
    # On GPUs Train.batch_size is per card, as in PaddleX; CPU processes split one batch between them.
    cpu_parallel = world > 1 and g["device"] == "cpu"
    per_rank_batch = t["batch_size"] // world if cpu_parallel else t["batch_size"]
    sampler = PKBatchSampler(dataset.labels, per_rank_batch, seed=g["seed"], rank=rank, world_size=world)
    return TrainData(
        root=root, train_entries=entries, label_dict=label_dict, num_classes=num_classes,
        gallery=gallery, query=query, dataset=dataset, sampler=sampler,
    )  # fmt: skip


def _write_run_files(run: TrainRun) -> None:
    """config.yaml and label_dict.txt in Global.output, as PaddleX writes them."""
    run.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        run.output / "config.yaml", yaml.safe_dump(dict(run.cfg), sort_keys=False, allow_unicode=True)
    )
    pairs = run.data.label_dict.items()
    atomic_write_text(run.output / "label_dict.txt", "".join(f"{new} {old}\n" for old, new in pairs))


# --- one epoch


def train_one_epoch(run: TrainRun, epoch: int) -> dict:
    """One pass over the sampler's batches; returns the epoch's mean loss and throughput."""
    data, t = run.data, run.cfg["Train"]
    data.sampler.set_epoch(epoch)
    data.dataset.set_epoch(epoch)
    workers = t["num_workers"]
    loader = paddle.io.DataLoader(
        data.dataset,
        batch_sampler=data.sampler,
        num_workers=workers,
        use_shared_memory=workers > 0,
        worker_init_fn=worker_init_for(os.getpid()) if workers > 0 else None,  # no orphans after a kill
    )
    run.model.train()
    loss_fn = recipe_loss(run.model_name)
    losses, images, start = [], 0, time.perf_counter()
    bar = progress(total=len(loader), desc=f"epoch {epoch}/{run.epochs}", leave=False)
    for step, (x, labels, ok, index) in enumerate(loader, start=1):
        if not bool(ok.all()):
            run.unreadable.update(index.numpy()[ok.numpy() == 0].tolist())
        value = _train_step(run, loss_fn, x, labels)
        if not math.isfinite(value):
            raise PaddlexFeatError(
                f"The loss became {value} at epoch {epoch}, step {step}. Training stopped; the last "
                "checkpoint on disk is intact. Lower Train.learning_rate, or check the data."
            )
        lr = run.schedule.get_lr()
        run.schedule.step()
        run.state["global_step"] += 1
        losses.append(value)
        images += x.shape[0] * run.world
        speed = images / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.5f}", ips=f"{speed:.1f}")
        bar.update()
        if run.is_main and (step % t["log_interval"] == 0 or step == len(loader)):
            logger.info(
                f"epoch {epoch} step {step}/{len(loader)} loss {value:.4f} lr {lr:.6f} {speed:.1f} images/s"
            )
            step_record = {"epoch": epoch, "step": run.state["global_step"], "loss": value, "lr": lr}
            _append_jsonl(
                run.output / "metrics.jsonl", {"type": "step", **step_record, "images_per_s": speed}
            )
    bar.close()
    seconds = time.perf_counter() - start
    return {
        "loss": float(np.mean(losses)),
        "lr": run.schedule.get_lr(),
        "images_per_s": images / seconds,
        "seconds": seconds,
    }


class TrainingForward(paddle.nn.Layer):
    """(features, logits) of a batch in one call: ``model(x)`` then ``model.logits``.

    One layer, so that dy2st compiles the head with the model and DataParallel sees every
    parameter the loss depends on in its forward.
    """

    def __init__(self, model: paddle.nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor, label: paddle.Tensor) -> tuple[paddle.Tensor, paddle.Tensor]:
        features = self.model(x)
        return features, self.model.logits(features, label)


LossFn = Callable[[paddle.Tensor, paddle.Tensor, paddle.Tensor], paddle.Tensor]  # (features, logits, labels)


def recipe_loss(model_name: str) -> LossFn:
    """The recipe's loss of (features, logits, labels), as the model table names it.

    ``arcmargin`` (CLIP) trains on the margin logits alone; ``ce_triplet`` (FC head) adds the triplet loss.
    """
    if get_model_info(model_name).loss == "arcmargin":
        return lambda features, logits, labels: arcmargin_cross_entropy(logits, labels)
    return lambda features, logits, labels: (
        smoothed_cross_entropy(logits, labels) + triplet_angular_margin_loss(features, labels)
    )


def _train_step(run: TrainRun, loss_fn: LossFn, x: paddle.Tensor, labels: paddle.Tensor) -> float:
    """Forward, backward and optimiser step on one batch (with the AMP scaler on GPUs); returns the loss."""
    with paddle.amp.auto_cast(enable=run.scaler is not None):
        loss = loss_fn(*run.step_model(x, labels), labels)
    value = float(loss)
    if not math.isfinite(value):
        return value  # the caller stops training; a NaN step must not reach the weights
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        loss.backward()
        run.optimizer.step()
    run.optimizer.clear_grad()
    return value


# --- epoch hooks: each does one thing after every epoch (and optionally after the last)


class EpochHook(Protocol):
    """Something to do after each epoch (``record`` holds the epoch's stats) and after training."""

    def after_epoch(self, run: TrainRun, record: dict) -> None: ...

    def after_train(self, run: TrainRun) -> None: ...


class Hook:
    """A hook that does nothing; subclasses override what they need."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        pass

    def after_train(self, run: TrainRun) -> None:
        pass


def epoch_hooks(run: TrainRun) -> list[EpochHook]:
    """The hooks of a run, in the order they run after each epoch."""
    hooks: list[EpochHook] = [DecodeGuard()]
    if run.data.can_eval and run.is_main:
        hooks.append(EvaluateHook())
    hooks.append(RecordHook())
    if run.is_main:
        hooks += [SaveHook(), ExportBestHook(), ResultHook(), PlotHook()]
    return hooks


class DecodeGuard(Hook):
    """Stop when more than MAX_UNREADABLE_FRACTION of the training images could not be decoded."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        dataset, bad = run.data.dataset, run.unreadable
        if len(bad) > MAX_UNREADABLE_FRACTION * len(dataset):
            raise DatasetError(
                f"{len(bad)} of {len(dataset)} training images could not be decoded (more than "
                f"{MAX_UNREADABLE_FRACTION:.0%}); first: {dataset.paths[min(bad)]}. "
                "Run -o Global.mode=check_dataset to list them."
            )

    def after_train(self, run: TrainRun) -> None:
        if run.unreadable:
            logger.warning(
                f"{len(run.unreadable)} unreadable training image(s) were replaced by others of their class."
            )


class EvaluateHook(Hook):
    """recall@k and mAP on the gallery/query lists every Train.eval_interval epochs and after the last."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        epoch = record["epoch"]
        if epoch % run.cfg["Train"]["eval_interval"] and epoch != run.epochs:
            return
        from .evaluate import evaluate_model

        data = run.data
        record["metrics"] = evaluate_model(
            run.model, run.cfg, data.gallery, data.query, run.input_size
        ).metrics
        logger.info(f"Epoch {epoch} eval: " + ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items()))


class RecordHook(Hook):
    """The epoch's record goes into the loop state's history and metrics.jsonl."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        run.state["history"].append(record)
        if run.is_main:
            _append_jsonl(run.output / "metrics.jsonl", {"type": "epoch", **record})


class SaveHook(Hook):
    """epoch_N/ (every Train.save_interval epochs and the last), latest/, and best_model/ when improved."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        state, epoch, t = run.state, record["epoch"], run.cfg["Train"]
        score = record.get("metrics", {}).get("recall1")
        improved = (score is not None and score > state["best_score"]) or (
            not run.data.can_eval and epoch == run.epochs
        )
        if improved:
            state["best_score"], state["best_epoch"] = (score if score is not None else -1.0), epoch
        tags = ["latest"]
        if epoch % t["save_interval"] == 0 or epoch == run.epochs:
            tags.insert(0, f"epoch_{epoch}")
            state["saved_epochs"].append({"epoch": epoch, "score": score})
        if improved:
            tags.append("best_model")
        # serialise once; the other tags are links to (or copies of) the same files. Each folder is
        # replaced as one unit, with config.yaml next to the weights as PaddleX writes it.
        config_text = (run.output / "config.yaml").read_text()
        states = _checkpoint_states(run, score)
        save_checkpoint(run.output, tags[0], run.model, run.optimizer, states, config_text=config_text)
        for tag in tags[1:]:
            copy_checkpoint(run.output, tags[0], tag)
        _drop_old_epochs(run)


def _drop_old_epochs(run: TrainRun) -> None:
    """Keep the last Train.keep_checkpoints epoch_N/ folders (latest/ and best_model/ are their own files)."""
    keep = run.cfg["Train"]["keep_checkpoints"]
    for item in run.state["saved_epochs"][:-keep]:
        folder = run.output / f"epoch_{item['epoch']}"
        if folder.is_dir():
            shutil.rmtree(folder)
            logger.info(f"Removed {folder} (Train.keep_checkpoints={keep} keeps the last {keep}).")


def _checkpoint_states(run: TrainRun, score: float | None) -> dict:
    """The .pdstates content: the loop state and the facts a checkpoint's readers need."""
    state = run.state
    return {
        "epoch": state["epoch"],
        "global_step": state["global_step"],
        "best_score": state["best_score"],
        "best_epoch": state["best_epoch"],
        "history": state["history"],
        "saved_epochs": state["saved_epochs"],  # which epoch_N/ folders exist: resume must not guess
        "lr_scheduler": run.schedule.state_dict(),
        "seed": run.seed,
        "metric": score,
        **facts_states(
            model_name=run.model_name,
            num_classes=run.data.num_classes,
            input_size=run.input_size,
            label_dict=run.data.label_dict,
            train_config=dict(run.cfg),
        ),
    }


class ExportBestHook(Hook):
    """best_model/inference/ through the export code whenever best_model/ was just written."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        if run.state["best_epoch"] != record["epoch"]:
            return
        # a clone with the same weights, so the model in training (and its static graph) is untouched
        clone = build_model(run.model_name, run.data.num_classes)
        clone.set_state_dict(run.model.state_dict())
        with staged_folder(run.output / "best_model", "inference") as staged:  # replaced as one unit
            export_inference(clone, run.model_name, staged, input_size=run.input_size)


class ResultHook(Hook):
    """train_result.json after every epoch, so a killed run still lists what it saved; a closing line."""

    def after_epoch(self, run: TrainRun, record: dict) -> None:
        atomic_write_json(run.output / "train_result.json", train_result(run, done=False))

    def after_train(self, run: TrainRun) -> None:
        best = run.state["best_epoch"]
        metrics = next((r.get("metrics") for r in run.state["history"] if r["epoch"] == best), None)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) if metrics else "not evaluated"
        logger.info(
            f"Done. Best epoch {best} of {run.epochs} ({scores}); the model is in {run.output / 'best_model'}/ "
            f"(weights best_model.pdparams; for predict: -o Predict.model_dir={run.output / 'best_model' / 'inference'})."
        )


class PlotHook(Hook):
    """training_curves.png from metrics.jsonl once training ends."""

    def after_train(self, run: TrainRun) -> None:
        _plot_curves(run.output / "metrics.jsonl", run.output / "training_curves.png")


def train_result(run: TrainRun, done: bool) -> dict:
    """train_result.json in PaddleX's schema; paths are relative to Global.output."""

    def entry(tag: str, score) -> dict:
        inference = {
            "inference_config": f"{tag}/inference/inference.yml",
            "pdmodel": f"{tag}/inference/inference.json",
            "pdiparams": f"{tag}/inference/inference.pdiparams",
        }
        files = {s: f"{tag}/{tag}.{s}" for s in ("pdparams", "pdopt", "pdstates")}
        return {"score": score, **files, **(inference if tag == "best_model" else {})}

    state = run.state
    saved = state["saved_epochs"][-min(KEEP_LAST, run.cfg["Train"]["keep_checkpoints"]) :][::-1]
    models = {f"last_{i}": {} for i in range(1, KEEP_LAST + 1)}
    for i, item in enumerate(saved, start=1):
        models[f"last_{i}"] = entry(f"epoch_{item['epoch']}", item["score"])
    best_score = state["best_score"] if state["best_score"] >= 0 else None
    models["best"] = entry("best_model", best_score) if state["best_epoch"] else {}
    return {
        "model_name": run.model_name,
        "done_flag": done,
        "config": "config.yaml",
        "train_log": "train.log",
        "visualdl_log": "",
        "label_dict": "label_dict.txt",
        "metrics_log": "metrics.jsonl",
        "training_curves": "training_curves.png",
        "best_epoch": state["best_epoch"],
        "models": models,
    }


# --- resume, files, processes


def _resume(path: str, run: TrainRun) -> tuple[dict, Path]:
    """Restore model, optimiser (with its schedule) and loop state; a mismatch is a clear error."""
    facts = read_facts(path, None, RESUME_KEY)
    model_name, num_classes, model = run.model_name, run.data.num_classes, run.model
    if (facts.model_name, facts.num_classes) != (model_name, num_classes):
        raise PaddlexFeatError(
            f"Train.resume_path={path!r} holds a {facts.model_name} checkpoint with "
            f"{facts.num_classes} classes, but this run trains {model_name} with {num_classes}. "
            "Resume with the same Global.model and data, or start with Train.pretrain_weight_path."
        )
    verify_checkpoint(facts)
    params = read_weights(facts, RESUME_KEY)
    own = model.state_dict()
    bad = [k for k, v in params.items() if k in own and list(v.shape) != list(own[k].shape)]
    missing = [k for k in own if k not in params]
    if bad or missing:
        raise PaddlexFeatError(
            f"Train.resume_path={path!r} does not match {model_name}: {len(missing)} missing and {len(bad)} "
            f"mis-shaped parameters (e.g. {(missing + bad)[0]}). Resume from a checkpoint of this model."
        )
    model.set_state_dict(params)
    restore_optimizer_state(model, run.optimizer, read_optimizer_state(facts))
    states = facts.states
    state = {k: states[k] for k in ("epoch", "global_step", "best_score", "best_epoch")} | {
        "history": list(states.get("history", [])),
        "saved_epochs": list(states.get("saved_epochs", [])),
    }
    return state, facts.weights.parent.parent  # the run folder the checkpoint was saved in


def _carry_metrics(run: TrainRun, source_run: Path) -> None:
    """metrics.jsonl as it was at the checkpoint: one row per step and per epoch up to it.

    Rows logged after the checkpoint (the killed epoch's steps) are dropped, since the resumed run
    logs those steps again; resuming into a new folder starts from the old run's rows.
    """
    target = run.output / "metrics.jsonl"
    source = target if target.is_file() else source_run / "metrics.jsonl"
    rows = (
        [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        if source.is_file()
        else []
    )
    step, epoch = run.state["global_step"], run.state["epoch"]
    kept = [r for r in rows if (r["step"] <= step if r.get("type") == "step" else r.get("epoch", 0) <= epoch)]
    run.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, "".join(json.dumps(r) + "\n" for r in kept))


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _plot_curves(metrics_path: Path, png_path: Path) -> None:
    """training_curves.png: loss and learning rate per step, and recall@1/@5 and mAP per evaluation.

    The x axis is in epochs (integer ticks, a dashed line at each epoch's end); each step sits at
    its fraction of its epoch, so runs of any length read alike. The loss is drawn raw (faint) and
    smoothed; a run with one evaluation shows its points on a 0-1 axis over every epoch.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not metrics_path.is_file():
        logger.info(f"No {metrics_path}: no training curves to plot.")
        return
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    series = curve_series(rows)
    xs, losses, lrs, last_epoch = series["x"], series["loss"], series["lr"], series["last_epoch"]
    epochs, evals = series["epochs"], series["evals"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    axes[0].plot(xs, losses, color="tab:blue", alpha=0.25, lw=0.8, label="per step")
    axes[0].plot(xs, _smoothed(losses), color="tab:blue", lw=1.8, label="smoothed")
    axes[0].set_title("training loss")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[1].plot(xs, lrs, color="tab:orange")
    axes[1].set_title("learning rate")
    for key, label, colour in (
        ("recall1", "recall@1", "tab:green"),
        ("recall5", "recall@5", "tab:olive"),
        ("mAP", "mAP", "tab:purple"),
    ):  # noqa: E501
        points = [(e, epochs[e]["metrics"][key]) for e in evals if key in epochs[e]["metrics"]]
        if points:
            axes[2].plot(*zip(*points), marker="o", color=colour, label=label)
            for e, v in points[-1:]:
                axes[2].annotate(f"{v:.3f}", (e, v), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axes[2].set_ylim(0, 1)
    axes[2].set_title("retrieval on gallery/query" if evals else "no evaluation (no gallery/query)")
    if evals:
        axes[2].legend(loc="upper left", fontsize=8)
    for ax in axes:
        ax.set_xlim(0 if ax is not axes[2] else 0.5, last_epoch + (0 if ax is not axes[2] else 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if ax is not axes[2]:
            for e in range(1, last_epoch):
                ax.axvline(e, color="grey", lw=0.6, ls="--")
    fig.tight_layout()
    with atomic_target(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def curve_series(rows: list[dict]) -> dict:
    """What the curves plot, from metrics.jsonl rows: each step at epoch - 1 + k/n, the evaluated epochs.

    After a resume the last row of a step (or an epoch) wins, so nothing is drawn twice.
    """
    steps = {r["step"]: r for r in rows if r.get("type") == "step"}
    epochs = {r["epoch"]: r for r in rows if r.get("type") == "epoch"}
    per_epoch: dict[int, list[dict]] = {}
    for r in sorted(steps.values(), key=lambda r: r["step"]):
        per_epoch.setdefault(r["epoch"], []).append(r)
    xs, losses, lrs = [], [], []
    for epoch, items in sorted(per_epoch.items()):
        for k, r in enumerate(items, start=1):
            xs.append(epoch - 1 + k / len(items))
            losses.append(r["loss"])
            lrs.append(r["lr"])
    return {
        "x": xs,
        "loss": losses,
        "lr": lrs,
        "epochs": epochs,
        "evals": sorted(e for e, r in epochs.items() if r.get("metrics")),
        "last_epoch": max([*epochs, *per_epoch, 1]),
    }


def _smoothed(values: list[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction, so the first steps are not pulled to 0."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight**i))
    return out


def _setup_worker_logging(output: Path, rank: int) -> None:
    """A spawned process starts without the CLI's handlers: rank 0 logs to the console and train.log."""
    from ..utils.logger import add_file_handler, setup_logging

    setup_logging(logging.INFO if rank == 0 else logging.WARNING)
    if rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        add_file_handler(output / "train.log")


def _launch_distributed(cfg: dict, nprocs: int, backend: str, gpus: str | None = None) -> dict:
    """Run :func:`train` in ``nprocs`` data-parallel processes through paddle.distributed.spawn."""
    device = "gpu" if backend == "nccl" else "cpu"
    worker_cfg = copy.deepcopy(cfg)  # keeps the config's record of command-line keys
    worker_cfg["Global"]["device"] = device
    options = {"gpus": gpus} if gpus else {}
    try:
        paddle.distributed.spawn(train, args=(worker_cfg,), nprocs=nprocs, backend=backend, **options)
    except Exception as e:  # noqa: BLE001 - spawn re-raises a worker's error as a bare Exception
        last = [line for line in str(e).strip().splitlines() if line.strip()][-1:]
        raise PaddlexFeatError(f"A training process failed: {last[0] if last else e}") from e
    result = json.loads((Path(cfg["Global"]["output"]) / "train_result.json").read_text())
    result["done_flag"] = True
    return result
