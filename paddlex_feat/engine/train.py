"""Global.mode=train: the PP-ShiTuV2 metric-learning recipe, with checkpoints, resume and eval.

Reads top to bottom: data -> model -> optimiser -> (resume) -> epochs of train/eval/save ->
train_result.json. Several GPUs in Global.device start paddle.distributed workers that run
the same function; the CPU path never touches the launcher.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import paddle
import yaml

from ..data.augment import TrainTransform
from ..data.lists import read_list
from ..data.sampler import PKBatchSampler
from ..data.train_data import TrainDataset, build_label_dict, check_num_classes
from ..models import build_model, get_model_info
from ..utils.device import gpu_count, parse_device, set_device
from ..utils.errors import DatasetError, PaddlexFeatError
from ..utils.io import atomic_write_json, atomic_write_text
from ..utils.logger import logger, progress
from ..utils.safe_load import safe_load
from .checkpoint import copy_checkpoint, load_training_state, restore_optimizer_state, save_checkpoint
from .export import export_inference
from .losses import arcmargin_cross_entropy, smoothed_cross_entropy, triplet_angular_margin_loss
from .optim import build_optimizer, build_schedule

MAX_UNREADABLE_FRACTION = 0.01
KEEP_LAST = 5


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
    g, t = cfg["Global"], cfg["Train"]
    rank, world = paddle.distributed.get_rank(), paddle.distributed.get_world_size()
    cpu_parallel = world > 1 and g["device"] == "cpu"
    if world > 1:  # a spawned worker: logging, its own device, then the process group
        _setup_worker_logging(Path(g["output"]), rank)
        device = "cpu" if cpu_parallel else f"gpu:{paddle.distributed.ParallelEnv().dev_id}"
        paddle.set_device(device)
        paddle.distributed.init_parallel_env()
    else:
        device = set_device(g["device"])
    output = Path(g["output"])
    info = get_model_info(g["model"])
    input_size = t["input_size"] or info.input_size

    # --- data
    root = g["dataset_dir"]
    if not os.path.isdir(root):
        raise DatasetError(
            f"Global.dataset_dir={root!r} does not exist. Point it at a ShiTuRecDataset folder."
        )
    train_entries = read_list(root, "train")
    label_dict = (
        build_label_dict(train_entries) if t["relabel"] else {e.label: e.label for e in train_entries}
    )
    num_classes = check_num_classes(t["num_classes"], train_entries, t["relabel"])
    gallery = read_list(root, "gallery", required=False)
    query = read_list(root, "query", required=False)
    can_eval = bool(gallery) and bool(query)
    if not can_eval:
        logger.info("No gallery/query lists: no evaluation; the best model is the last epoch's.")
    transform = TrainTransform(input_size, info.mean, info.std, info.interpolation)
    dataset = TrainDataset(train_entries, root, label_dict, transform, seed=g["seed"])
    # On GPUs Train.batch_size is per card, as in PaddleX; CPU processes split one batch between them.
    per_rank_batch = t["batch_size"] // world if cpu_parallel else t["batch_size"]
    sampler = PKBatchSampler(dataset.labels, per_rank_batch, seed=g["seed"], rank=rank, world_size=world)
    loader_workers = t["num_workers"]

    # --- model and optimiser
    paddle.seed(g["seed"])
    model = build_model(g["model"], num_classes)
    if t["pretrain_weight_path"] and not t["resume_path"]:
        from ..models.weights import load_weights

        load_weights(model, t["pretrain_weight_path"], config_key="Train.pretrain_weight_path")
    epochs, iters_per_epoch = t["epochs_iters"], len(sampler)
    schedule = build_schedule(t["learning_rate"], epochs, iters_per_epoch, t["warmup_steps"])
    optimizer = build_optimizer(model, schedule)
    amp = t["amp"] and device.startswith("gpu")
    if t["amp"] and not amp:
        logger.info("Train.amp=True is ignored on the CPU.")
    scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if amp else None
    step_model = paddle.jit.to_static(model, full_graph=True) if t["dy2st"] else model
    if world > 1:
        step_model = paddle.DataParallel(step_model)

    # --- resume
    state = {
        "epoch": 0,
        "global_step": 0,
        "best_score": -1.0,
        "best_epoch": 0,
        "history": [],
        "saved_epochs": [],
    }
    if t["resume_path"]:
        state = _resume(t["resume_path"], model, optimizer, g["model"], num_classes, label_dict)
        logger.info(
            f"Resumed from {t['resume_path']} after epoch {state['epoch']} (step {state['global_step']})."
        )

    is_main = rank == 0
    if is_main:
        output.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output / "config.yaml", yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
        atomic_write_text(
            output / "label_dict.txt", "".join(f"{new} {old}\n" for old, new in label_dict.items())
        )
    logger.info(
        f"Training {g['model']} on {device} x{world}: {len(train_entries)} images, {num_classes} classes, "
        f"input {input_size}, batch {sampler.batch_size}, {iters_per_epoch} iterations/epoch, {epochs} epochs."
    )

    # --- epochs
    unreadable: set[int] = set()
    for epoch in range(state["epoch"] + 1, epochs + 1):
        paddle.seed(g["seed"] + epoch)  # dropout noise depends on the epoch only, so resume is exact
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        loader = paddle.io.DataLoader(
            dataset, batch_sampler=sampler, num_workers=loader_workers, use_shared_memory=loader_workers > 0
        )
        model.train()
        stats = _train_one_epoch(
            cfg, step_model, loader, optimizer, schedule, scaler, epoch, state, unreadable
        )
        if len(unreadable) > MAX_UNREADABLE_FRACTION * len(dataset):
            raise DatasetError(
                f"{len(unreadable)} of {len(dataset)} training images could not be decoded (more than "
                f"{MAX_UNREADABLE_FRACTION:.0%}); first: {dataset.paths[min(unreadable)]}. "
                "Run -o Global.mode=check_dataset to list them."
            )
        state["epoch"] = epoch
        record = {"epoch": epoch, **stats}
        if can_eval and rank == 0 and (epoch % t["eval_interval"] == 0 or epoch == epochs):
            record["metrics"] = _evaluate(cfg, model, gallery, query, input_size)
            logger.info(
                f"Epoch {epoch} eval: " + ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items())
            )
        state["history"].append(record)
        if is_main:
            _append_jsonl(output / "metrics.jsonl", {"type": "epoch", **record})
            _save_epoch(
                cfg, model, optimizer, schedule, state, record, label_dict, num_classes, input_size, can_eval
            )
    if world > 1:
        paddle.distributed.barrier()
    if not is_main:
        return {"done_flag": True}
    if unreadable:
        logger.warning(
            f"{len(unreadable)} unreadable training image(s) were replaced by others of their class."
        )
    _plot_curves(output / "metrics.jsonl", output / "training_curves.png")
    return _train_result(cfg, state, done=True)


def _train_one_epoch(cfg, model, loader, optimizer, schedule, scaler, epoch, state, unreadable) -> dict:
    """One pass over the sampler's batches; returns the epoch's mean loss and throughput."""
    t = cfg["Train"]
    output = Path(cfg["Global"]["output"])
    # the recipe follows the head: ArcMargin (CLIP) trains on its margin logits alone, FC adds the triplet loss
    arcmargin_head = get_model_info(cfg["Global"]["model"]).extra["paddleclas_arch"]["Head"] == "ArcMargin"
    world, is_main = paddle.distributed.get_world_size(), paddle.distributed.get_rank() == 0
    losses, images, start = [], 0, time.perf_counter()
    bar = progress(total=len(loader), desc=f"epoch {epoch}/{t['epochs_iters']}", leave=False)
    for step, (x, labels, ok, index) in enumerate(loader, start=1):
        if not bool(ok.all()):
            unreadable.update(index.numpy()[ok.numpy() == 0].tolist())
        with paddle.amp.auto_cast(enable=scaler is not None):
            out = model(x, labels)
            if arcmargin_head:
                loss = arcmargin_cross_entropy(out["logits"], labels)
            else:
                loss = smoothed_cross_entropy(out["logits"], labels) + triplet_angular_margin_loss(
                    out["features"], labels
                )
        value = float(loss)
        if not math.isfinite(value):
            raise PaddlexFeatError(
                f"The loss became {value} at epoch {epoch}, step {step}. Training stopped; the last "
                "checkpoint on disk is intact. Lower Train.learning_rate, or check the data."
            )
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.clear_grad()
        lr = schedule.get_lr()
        schedule.step()
        state["global_step"] += 1
        losses.append(value)
        images += x.shape[0] * world
        speed = images / (time.perf_counter() - start)
        bar.set_postfix(loss=f"{value:.4f}", lr=f"{lr:.5f}", ips=f"{speed:.1f}")
        bar.update()
        if is_main and (step % t["log_interval"] == 0 or step == len(loader)):
            logger.info(
                f"epoch {epoch} step {step}/{len(loader)} loss {value:.4f} lr {lr:.6f} {speed:.1f} images/s"
            )
            _append_jsonl(
                output / "metrics.jsonl",
                {
                    "type": "step",
                    "epoch": epoch,
                    "step": state["global_step"],
                    "loss": value,
                    "lr": lr,
                    "images_per_s": speed,
                },
            )
    bar.close()
    seconds = time.perf_counter() - start
    return {
        "loss": float(np.mean(losses)),
        "lr": schedule.get_lr(),
        "images_per_s": images / seconds,
        "seconds": seconds,
    }


def _evaluate(cfg: dict, model, gallery, query, input_size: int) -> dict:
    """recall@k and mAP of the model on the gallery/query lists (the evaluate mode's code path)."""
    from .evaluate import evaluate_model

    return evaluate_model(model, cfg, gallery, query, input_size).metrics


def _save_epoch(
    cfg, model, optimizer, schedule, state, record, label_dict, num_classes, input_size, can_eval
):
    """Write epoch_N/, latest/ and (when improved) best_model/ with its inference folder."""
    t, output = cfg["Train"], cfg["Global"]["output"]
    epoch = record["epoch"]
    score = record.get("metrics", {}).get("recall1")
    improved = (score is not None and score > state["best_score"]) or (
        not can_eval and epoch == t["epochs_iters"]
    )
    if improved:
        state["best_score"], state["best_epoch"] = (score if score is not None else -1.0), epoch
    tags = ["latest"]
    if epoch % t["save_interval"] == 0 or epoch == t["epochs_iters"]:
        tags.insert(0, f"epoch_{epoch}")
        state["saved_epochs"].append({"epoch": epoch, "score": score})
    if improved:
        tags.append("best_model")
    states = {
        "epoch": epoch,
        "global_step": state["global_step"],
        "best_score": state["best_score"],
        "best_epoch": state["best_epoch"],
        "history": state["history"],
        "saved_epochs": state["saved_epochs"],  # which epoch_N/ folders exist: resume must not guess
        "lr_scheduler": schedule.state_dict(),
        "seed": cfg["Global"]["seed"],
        "label_dict": label_dict,
        "model_name": cfg["Global"]["model"],
        "num_classes": num_classes,
        "input_size": input_size,
        "metric": score,
    }
    # serialise once; the other tags are links to (or copies of) the same files
    save_checkpoint(output, tags[0], model, optimizer, states)
    for tag in tags[1:]:
        copy_checkpoint(output, tags[0], tag)
    if improved:
        _export_best(cfg, model, num_classes, input_size)
    # config.yaml next to the weights lets evaluate/export find the model without -c
    config_text = (Path(output) / "config.yaml").read_text()
    for tag in tags:
        atomic_write_text(Path(output) / tag / "config.yaml", config_text)
    atomic_write_json(Path(output) / "train_result.json", _train_result(cfg, state, done=False))


def _export_best(cfg: dict, model, num_classes: int, input_size: int) -> None:
    """best_model/inference/ through the export code, from a copy so training is untouched."""
    folder = Path(cfg["Global"]["output"]) / "best_model"
    clone = build_model(cfg["Global"]["model"], num_classes)
    clone.set_state_dict(safe_load(folder / "best_model.pdparams"))
    export_inference(clone, cfg["Global"]["model"], folder / "inference", input_size=input_size)


def _train_result(cfg: dict, state: dict, done: bool) -> dict:
    """train_result.json in PaddleX's schema; paths are relative to Global.output."""

    def entry(tag: str, score) -> dict:
        inference = {
            "inference_config": f"{tag}/inference/inference.yml",
            "pdmodel": f"{tag}/inference/inference.json",
            "pdiparams": f"{tag}/inference/inference.pdiparams",
        }
        files = {s: f"{tag}/{tag}.{s}" for s in ("pdparams", "pdopt", "pdstates")}
        return {"score": score, **files, **(inference if tag == "best_model" else {})}

    saved = state["saved_epochs"][-KEEP_LAST:][::-1]
    models = {f"last_{i}": {} for i in range(1, KEEP_LAST + 1)}
    for i, item in enumerate(saved, start=1):
        models[f"last_{i}"] = entry(f"epoch_{item['epoch']}", item["score"])
    best_score = state["best_score"] if state["best_score"] >= 0 else None
    models["best"] = entry("best_model", best_score) if state["best_epoch"] else {}
    return {
        "model_name": cfg["Global"]["model"],
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


def _resume(path: str, model, optimizer, model_name: str, num_classes: int, label_dict: dict) -> dict:
    """Restore model, optimiser (with its schedule) and loop state; a mismatch is a clear error."""
    params, opt_state, states = load_training_state(path)
    if states.get("model_name") not in (None, model_name) or states.get("num_classes") not in (
        None,
        num_classes,
    ):
        raise PaddlexFeatError(
            f"Train.resume_path={path!r} holds a {states.get('model_name')} checkpoint with "
            f"{states.get('num_classes')} classes, but this run trains {model_name} with {num_classes}. "
            "Resume with the same Global.model and data, or start with Train.pretrain_weight_path."
        )
    own = model.state_dict()
    bad = [k for k, v in params.items() if k in own and list(v.shape) != list(own[k].shape)]
    missing = [k for k in own if k not in params]
    if bad or missing:
        raise PaddlexFeatError(
            f"Train.resume_path={path!r} does not match {model_name}: {len(missing)} missing and {len(bad)} "
            f"mis-shaped parameters (e.g. {(missing + bad)[0]}). Resume from a checkpoint of this model."
        )
    model.set_state_dict(params)
    restore_optimizer_state(model, optimizer, opt_state)
    return {k: states[k] for k in ("epoch", "global_step", "best_score", "best_epoch")} | {
        "history": list(states.get("history", [])),
        "saved_epochs": list(states.get("saved_epochs", [])),
    }


def _append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def _plot_curves(metrics_path: Path, png_path: Path) -> None:
    """training_curves.png: loss, learning rate and recall@1 per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r for r in map(json.loads, metrics_path.read_text().splitlines()) if r["type"] == "epoch"]
    # after a resume, the last record of each epoch wins
    by_epoch = {r["epoch"]: r for r in epochs}
    xs = sorted(by_epoch)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(xs, [by_epoch[e]["loss"] for e in xs], marker="o")
    axes[0].set_title("training loss")
    axes[1].plot(xs, [by_epoch[e]["lr"] for e in xs], marker="o", color="tab:orange")
    axes[1].set_title("learning rate (end of epoch)")
    evals = [e for e in xs if "metrics" in by_epoch[e]]
    axes[2].plot(evals, [by_epoch[e]["metrics"]["recall1"] for e in evals], marker="o", color="tab:green")
    axes[2].set_title("recall@1")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png_path.with_name(f".{png_path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png_path)


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
    worker_cfg = {**cfg, "Global": {**cfg["Global"], "device": device}}
    options = {"gpus": gpus} if gpus else {}
    try:
        paddle.distributed.spawn(train, args=(worker_cfg,), nprocs=nprocs, backend=backend, **options)
    except Exception as e:  # noqa: BLE001 - spawn re-raises a worker's error as a bare Exception
        last = [line for line in str(e).strip().splitlines() if line.strip()][-1:]
        raise PaddlexFeatError(f"A training process failed: {last[0] if last else e}") from e
    result = json.loads((Path(cfg["Global"]["output"]) / "train_result.json").read_text())
    result["done_flag"] = True
    return result
