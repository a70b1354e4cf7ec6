"""Train speed and accuracy, side by side: PaddleClas 2.6's own engine against ours, in one run.

    python bench/train_speed.py [--epochs 3] [--train-limit N] [--skip-paddleclas] [--skip-ours]
                                [--ours-extra Train.dy2st=True] [--ours-extra "-o Train.cpu_processes=2"]

Both runs train PP-ShiTuV2_rec (PPLCNetV2_base + BNNeck + FC, CE with label smoothing 0.1 plus
TripletAngularMarginLoss) from scratch on the CPU with the same recipe: input 64, batch 64 (PK
sampler, 4 images per class, classes drawn with equal probability), Momentum 0.9, lr 0.04 cosine
with a 1-epoch warm-up, L2 1e-5, 2 loader workers, retrieval eval (query vs gallery) after every
epoch. They run one after the other, so they never compete for the cores.

PaddleClas: ``tools/train.py`` from the 2.6.0 release commit, unmodified, extracted with
``git archive`` from a PaddleClas git dir (``--paddleclas-repo``, env PADDLECLAS_REPO) into
``--paddleclas-src`` (once), and run by the reference python (``--ref-python``, default ``.venv-ref/bin/python``) with that checkout first on
PYTHONPATH (so its full ``ppcls`` wins over the site-packages wheel, which lacks the engine).
Its config is generated here from ppcls/configs/GeneralRecognitionV2/GeneralRecognitionV2_PPLCNetV2_base.yaml.

Per-epoch img/s is images trained / wall seconds of that epoch's training loop (eval excluded) for
both engines. PaddleClas's is read from the timestamps of its log (1 s resolution); its own "ips"
log figure (mean over the logged intervals, first iterations excluded) is shown too. Ours comes
from ``{output}/metrics.jsonl``. Wall and CPU time (user+sys, loader workers included) are for
each whole process.

``--train-limit N`` keeps only the first N classes of each list (images symlinked into a temporary
dataset folder), for a quick smoke run. Results go to bench/results/train_speed.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from paths import bench_dataset, paddleclas_repo, ref_python

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PADDLECLAS_SRC = "/tmp/paddleclas_src"
PADDLECLAS_260_COMMIT = "d6892e564cc754e760939e4848e45dc1b1a3c374"  # "Release PaddleClas release/2.6"
BASE_CONFIG = "ppcls/configs/GeneralRecognitionV2/GeneralRecognitionV2_PPLCNetV2_base.yaml"

INPUT_SIZE = 64
BATCH_SIZE = 64
LEARNING_RATE = 0.04
WARMUP_EPOCHS = 1
NUM_WORKERS = 2
SEED = 42

LOG_TIME = re.compile(r"^\[(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)\] ppcls (\w+): (.*)$")
TRAIN_ITER = re.compile(
    r"\[Train\]\[Epoch (\d+)/\d+\]\[Iter: (\d+)/(\d+)\].*batch_cost: ([\d.]+).*ips: ([\d.]+)"
)
TRAIN_AVG = re.compile(r"\[Train\]\[Epoch (\d+)/\d+\]\[Avg\]")
# Lines of either engine's output worth echoing while it runs.
PROGRESS_MARKS = ("[Train]", "[Eval]", " eval: ", " images/s", "Error", "Traceback")
EVAL_AVG = re.compile(r"\[Eval\]\[Epoch (\d+)\]\[Avg\](.*)")


@dataclass
class RunResult:
    """One engine's run: per-epoch figures plus whole-process costs."""

    name: str
    command: str
    returncode: int
    wall_s: float
    cpu_s: float
    load_before_after: tuple[float, float] = (0.0, 0.0)  # 1-min load average: other jobs on the machine
    epochs: dict[int, dict] = field(default_factory=dict)  # epoch -> {"images_per_s", "recall1", ...}
    log_path: str = ""


# ----------------------------------------------------------------------------- data


def read_lines(path: Path) -> list[str]:
    """Non-blank lines of a list file."""
    return [line for line in path.read_text().splitlines() if line.strip()]


def first_classes(lines: list[str], limit: int) -> tuple[list[str], list[str]]:
    """Lines whose label is among the first ``limit`` labels met, and those labels."""
    keep: list[str] = []
    for line in lines:
        label = line.split()[1]
        if label not in keep:
            if len(keep) == limit:
                continue
            keep.append(label)
    return [line for line in lines if line.split()[1] in keep], keep


def prepare_dataset(dataset_dir: Path, train_limit: int | None, work: Path) -> Path:
    """The dataset itself, or (with a limit) a temporary copy of its lists cut to the first classes."""
    if not train_limit:
        return dataset_dir
    small = work / "dataset"
    small.mkdir(parents=True, exist_ok=True)
    (small / "images").symlink_to(dataset_dir / "images", target_is_directory=True)
    train, _ = first_classes(read_lines(dataset_dir / "train.txt"), train_limit)
    gallery, eval_labels = first_classes(read_lines(dataset_dir / "gallery.txt"), train_limit)
    query = [line for line in read_lines(dataset_dir / "query.txt") if line.split()[1] in eval_labels]
    for name, lines in (("train", train), ("gallery", gallery), ("query", query)):
        (small / f"{name}.txt").write_text("".join(f"{line}\n" for line in lines))
    print(
        f"--train-limit {train_limit}: {len(train)} train, {len(gallery)} gallery, {len(query)} query images"
    )
    return small


def count_classes(list_path: Path) -> int:
    """Distinct labels in a list file."""
    return len({line.split()[1] for line in read_lines(list_path)})


# ----------------------------------------------------------------------------- PaddleClas side


def ensure_paddleclas_src(repo: Path, src: Path) -> None:
    """Extract PaddleClas 2.6.0's ppcls/ and tools/ into ``src`` unless already there."""
    marker = src / ".paddleclas_commit"
    if (src / "tools" / "train.py").is_file() and (src / BASE_CONFIG).is_file():
        found = marker.read_text().strip() if marker.is_file() else "unknown (not made by this script)"
        if found != PADDLECLAS_260_COMMIT:
            print(f"note: {src} holds PaddleClas commit {found}, not 2.6.0's {PADDLECLAS_260_COMMIT}")
        return
    if not (repo / "HEAD").is_file():
        sys.exit(
            f"No PaddleClas git dir at {repo}. Clone https://github.com/PaddlePaddle/PaddleClas beside this repo, or pass its git dir "
            "with --paddleclas-repo (or PADDLECLAS_REPO)."
        )
    src.mkdir(parents=True, exist_ok=True)
    # Only ppcls/ and tools/: the snapshot lacks some large blobs elsewhere (deploy fonts), which
    # would make a whole-tree archive fail.
    archive = subprocess.run(
        ["git", "--git-dir", str(repo), "archive", PADDLECLAS_260_COMMIT, "ppcls", "tools"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    marker.write_text(PADDLECLAS_260_COMMIT + "\n")
    print(f"extracted PaddleClas {PADDLECLAS_260_COMMIT[:9]} (ppcls/, tools/) into {src}")


def paddleclas_env(src: Path) -> dict[str, str]:
    """Environment that puts the checkout's ppcls ahead of the installed wheel, CPU only."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(src) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def check_ppcls_origin(ref_python: str, src: Path) -> None:
    """Fail early if the interpreter would import a ppcls other than the checkout's."""
    done = subprocess.run(
        [ref_python, "-c", "import ppcls, ppcls.engine.engine; print(ppcls.__file__)"],
        cwd=src,
        env=paddleclas_env(src),
        capture_output=True,
        text=True,
    )
    origin = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0 or not Path(origin).resolve().is_relative_to(src.resolve()):
        sys.exit(f"{ref_python} does not import ppcls from {src} (got {origin!r}):\n{done.stderr[-2000:]}")


def transform_ops(train: bool) -> list[dict]:
    """The reference transforms at INPUT_SIZE; the pad scales as 10 px at 224."""
    resize = {"ResizeImage": {"size": [INPUT_SIZE, INPUT_SIZE], "return_numpy": False,
                              "interpolation": "bilinear", "backend": "cv2"}}  # fmt: skip
    normalize = {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                                    "std": [0.229, 0.224, 0.225], "order": "hwc"}}  # fmt: skip
    decode = {"DecodeImage": {"to_rgb": True, "channel_first": False}}
    if not train:
        return [decode, resize, normalize]
    return [
        decode,
        resize,
        {"RandFlipImage": {"flip_code": 1}},
        {"Pad": {"padding": round(10 * INPUT_SIZE / 224), "backend": "cv2"}},
        {"RandCropImageV2": {"size": [INPUT_SIZE, INPUT_SIZE]}},
        {"RandomRotation": {"prob": 0.5, "degrees": 90, "interpolation": "bilinear"}},
        resize,
        normalize,
    ]


def paddleclas_config(
    src: Path, dataset: Path, output: Path, epochs: int, class_num: int, log_step: int
) -> dict:
    """GeneralRecognitionV2_PPLCNetV2_base.yaml adapted to this benchmark's recipe."""
    cfg = yaml.safe_load((src / BASE_CONFIG).read_text())
    g = cfg["Global"]
    g.update(
        output_dir=str(output), device="cpu", epochs=epochs, print_batch_step=log_step, save_interval=1,
        eval_during_train=True, eval_interval=1, image_shape=[3, INPUT_SIZE, INPUT_SIZE], seed=SEED,
    )  # fmt: skip
    cfg["Arch"]["Backbone"]["pretrained"] = False  # no download: both engines start from scratch
    cfg["Arch"]["Head"]["class_num"] = class_num
    cfg["Optimizer"]["lr"]["learning_rate"] = LEARNING_RATE
    cfg["Optimizer"]["lr"]["warmup_epoch"] = WARMUP_EPOCHS
    loaders = cfg["DataLoader"]
    train = loaders["Train"]
    train["dataset"].update(image_root=str(dataset), cls_label_path=str(dataset / "train.txt"))
    train["dataset"]["transform_ops"] = transform_ops(train=True)
    train["sampler"].update(batch_size=BATCH_SIZE, sample_per_id=4, sample_method="id_avg_prob")
    for key in ("id_list", "ratio"):  # its class-id ranges refer to the 192612-class set
        train["sampler"].pop(key, None)
    train["loader"]["num_workers"] = NUM_WORKERS
    for split, list_name in (("Query", "query.txt"), ("Gallery", "gallery.txt")):
        part = loaders["Eval"][split]
        part["dataset"].update(image_root=str(dataset), cls_label_path=str(dataset / list_name))
        part["dataset"]["transform_ops"] = transform_ops(train=False)
        part["sampler"]["batch_size"] = BATCH_SIZE
        part["loader"]["num_workers"] = NUM_WORKERS
    cfg["Metric"] = {"Eval": [{"Recallk": {"topk": [1, 5]}}, {"mAP": {}}]}
    return cfg


def log_time(stamp: str) -> float:
    """Seconds since the epoch of a PaddleClas log timestamp."""
    return dt.datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S").timestamp()


def parse_paddleclas_log(text: str) -> dict[int, dict]:
    """Per-epoch throughput and eval metrics from PaddleClas's log.

    An epoch's training loop starts just after the previous log line (the previous epoch's last
    save) or, for epoch 1, ``batch_cost`` seconds before its iteration-0 line; it ends at its
    ``[Avg]`` line.
    """
    epochs: dict[int, dict] = {}
    previous_time: float | None = None
    for line in text.splitlines():
        stamped = LOG_TIME.match(line)
        if not stamped:
            continue
        when, message = log_time(stamped.group(1)), stamped.group(3)
        if m := TRAIN_ITER.search(message):
            epoch, step, iters = int(m.group(1)), int(m.group(2)), int(m.group(3))
            rec = epochs.setdefault(epoch, {"iters": iters, "ips_log": []})
            if step == 0:
                rec["start"] = (
                    when - float(m.group(4)) if epoch == 1 or previous_time is None else previous_time
                )
            rec["ips_log"].append((step, float(m.group(5))))
        elif (m := TRAIN_AVG.search(message)) and int(m.group(1)) in epochs:
            rec = epochs[int(m.group(1))]
            rec["train_s"] = max(when - rec["start"], 1.0)
        elif m := EVAL_AVG.search(message):
            metrics = dict(re.findall(r"(\w+): ([\d.]+)", m.group(2)))
            epochs.setdefault(int(m.group(1)), {})["metrics"] = {k: float(v) for k, v in metrics.items()}
        previous_time = when
    for rec in epochs.values():
        if "train_s" in rec:
            rec["images_per_s"] = rec["iters"] * BATCH_SIZE / rec["train_s"]
        rec["ips_log_mean"] = logged_ips_mean(rec.pop("ips_log", []))
        rec["recall1"] = rec.get("metrics", {}).get("recall1")
    return epochs


def logged_ips_mean(points: list[tuple[int, float]]) -> float | None:
    """Time-weighted mean of the logged ips, each line covering the iterations since the last one.

    Lines up to iteration 5 are left out: PaddleClas resets its timers before timing iteration 5,
    to skip warm-up, so the next line covers iterations 5..step.
    """
    iterations = seconds = 0.0
    last_step = 4
    for step, ips in points:
        if step <= 5 or ips <= 0:
            continue
        covered = step - last_step
        iterations += covered
        seconds += covered * BATCH_SIZE / ips
        last_step = step
    return iterations * BATCH_SIZE / seconds if seconds else None


# ----------------------------------------------------------------------------- running


def run_timed(name: str, cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> RunResult:
    """Run one training process to completion, teeing its output to a log; wall and CPU time."""
    print(f"\n=== {name}: {shlex.join(cmd)}\n    (cwd {cwd}, log {log_path})", flush=True)
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if any(mark in line for mark in PROGRESS_MARKS):
                print(f"  {name}| {line.rstrip()}", flush=True)
        returncode = proc.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if returncode != 0:
        print(f"!!! {name} exited with {returncode}; last lines of {log_path}:")
        print("\n".join(log_path.read_text().splitlines()[-30:]))
    loads = (load_before, os.getloadavg()[0])
    return RunResult(name, shlex.join(cmd), returncode, wall, cpu, loads, log_path=str(log_path))


def run_paddleclas(args: argparse.Namespace, dataset: Path, work: Path, class_num: int) -> RunResult:
    """PaddleClas 2.6's tools/train.py on the generated config."""
    src = Path(args.paddleclas_src)
    ensure_paddleclas_src(Path(args.paddleclas_repo), src)
    check_ppcls_origin(args.ref_python, src)
    cfg = paddleclas_config(
        src, dataset, work / "paddleclas_output", args.epochs, class_num, args.print_batch_step
    )
    cfg_path = work / "paddleclas_train_config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [args.ref_python, "tools/train.py", "-c", str(cfg_path)]
    result = run_timed("PaddleClas", cmd, src, paddleclas_env(src), work / "paddleclas_stdout.log")
    result.command = f"cd {src} && PYTHONPATH={src} CUDA_VISIBLE_DEVICES= {result.command}"
    result.epochs = parse_paddleclas_log(Path(result.log_path).read_text())
    return result


def ours_overrides(extra: list[str]) -> list[str]:
    """--ours-extra values as CLI words; a bare KEY=VALUE gets its -o."""
    words: list[str] = []
    for item in extra:
        for word in shlex.split(item):
            words += [word] if word.startswith("-") or (words and words[-1] == "-o") else ["-o", word]
    return words


def run_ours(args: argparse.Namespace, dataset: Path, work: Path, class_num: int) -> RunResult:
    """Our main.py train on the same data and recipe."""
    output = work / "ours_output"
    settings = {
        "Global.mode": "train",
        "Global.device": "cpu",
        "Global.dataset_dir": str(dataset),
        "Global.output": str(output),
        "Global.seed": SEED,
        "Train.num_classes": class_num,
        "Train.input_size": INPUT_SIZE,
        "Train.batch_size": BATCH_SIZE,
        "Train.learning_rate": LEARNING_RATE,
        "Train.warmup_steps": WARMUP_EPOCHS,
        "Train.pretrain_weight_path": "null",
        "Train.epochs_iters": args.epochs,
        "Train.num_workers": NUM_WORKERS,
        "Train.log_interval": 20,
    }
    cmd = [
        str(ROOT / ".venv" / "bin" / "python"),
        "main.py",
        "-c",
        "configs/modules/image_feature/PP-ShiTuV2_rec.yaml",
    ]
    for key, value in settings.items():
        cmd += ["-o", f"{key}={value}"]
    cmd += ours_overrides(args.ours_extra)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = run_timed("ours", cmd, ROOT, env, work / "ours_stdout.log")
    metrics = output / "metrics.jsonl"
    if metrics.is_file():
        for record in map(json.loads, metrics.read_text().splitlines()):
            if record.get("type") == "epoch":
                result.epochs[record["epoch"]] = {
                    "images_per_s": record.get("images_per_s"),
                    "train_s": record.get("seconds"),
                    "iters": round(record["images_per_s"] * record["seconds"] / BATCH_SIZE)
                    if record.get("seconds")
                    else None,
                    "recall1": record.get("metrics", {}).get("recall1"),
                    "metrics": record.get("metrics", {}),
                }
    return result


# ----------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str) -> str:
    """A number, or a dash when missing."""
    return "–" if value is None else format(value, spec)


def ratio(ours: float | None, theirs: float | None) -> float | None:
    """ours / theirs, or None."""
    return ours / theirs if ours and theirs else None


def report(args: argparse.Namespace, paddleclas: RunResult | None, ours: RunResult | None, note: str) -> str:
    """The markdown report."""
    runs = [r for r in (paddleclas, ours) if r]
    pc_epochs = paddleclas.epochs if paddleclas else {}
    our_epochs = ours.epochs if ours else {}
    lines = [
        "# Train speed and accuracy: PaddleClas 2.6 engine vs ours",
        "",
        f"Written by `bench/train_speed.py` on {time.strftime('%Y-%m-%d %H:%M')}. {note}",
        "",
        f"Recipe (both): PP-ShiTuV2_rec from scratch, CPU, input {INPUT_SIZE}, batch {BATCH_SIZE} (PK, 4 per "
        f"class), lr {LEARNING_RATE} cosine, {WARMUP_EPOCHS}-epoch warm-up, {NUM_WORKERS} loader workers, "
        f"{args.epochs} epoch(s), retrieval eval (query vs gallery) after each epoch.",
        "img/s = images trained / wall seconds of the epoch's training loop (eval excluded); PaddleClas's from "
        "its log timestamps (1 s resolution), its own logged `ips` mean in brackets. Ratio = ours / PaddleClas.",
        "",
        "| epoch | PaddleClas img/s [log ips] | ours img/s | ratio | PaddleClas recall@1 | ours recall@1 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for epoch in sorted(set(pc_epochs) | set(our_epochs)):
        pc, us = pc_epochs.get(epoch, {}), our_epochs.get(epoch, {})
        pc_speed, our_speed = pc.get("images_per_s"), us.get("images_per_s")
        lines.append(
            f"| {epoch} | {fmt(pc_speed, '.1f')} [{fmt(pc.get('ips_log_mean'), '.1f')}] | {fmt(our_speed, '.1f')} "
            f"| {fmt(ratio(our_speed, pc_speed), '.2f')}x | {fmt(pc.get('recall1'), '.4f')} "
            f"| {fmt(us.get('recall1'), '.4f')} |"
        )
    lines += [
        "",
        "| process | exit | wall s | CPU s (user+sys, workers incl.) | CPU/wall | load avg before/after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.returncode} | {run.wall_s:.0f} | {run.cpu_s:.0f} | {run.cpu_s / run.wall_s:.2f} "
            f"| {run.load_before_after[0]:.1f} / {run.load_before_after[1]:.1f} |"
        )
    if paddleclas and ours:
        lines.append(f"| ratio ours / PaddleClas | | {ours.wall_s / paddleclas.wall_s:.2f} | "
                     f"{ours.cpu_s / paddleclas.cpu_s:.2f} | | |")  # fmt: skip
    lines += [
        "",
        "Per epoch: training-loop time, iterations (PaddleClas rounds images/batch up, ours down) and eval metrics:",
        "",
    ]
    for run in runs:
        for epoch, rec in sorted(run.epochs.items()):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in rec.get("metrics", {}).items())
            loop = f"{fmt(rec.get('train_s'), '.0f')} s training, {rec.get('iters', '–')} iterations"
            lines.append(f"- {run.name} epoch {epoch}: {loop}; {shown or 'no eval'}")
    lines += ["", "Commands:", ""]
    for run in runs:
        lines += [f"- {run.name} (log `{run.log_path}`):", "", "  ```", f"  {run.command}", "  ```"]
    lines += [
        "",
        f"Benchmark command: `{shlex.join([sys.executable, *sys.argv])}`",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU(s), shared with other jobs while measuring.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run both trainings in turn, print and write the report."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dataset-dir", default=str(bench_dataset()), help="env BENCH_DATASET")
    parser.add_argument("--train-limit", type=int, default=None, help="keep the first N classes (smoke run)")
    parser.add_argument("--skip-paddleclas", action="store_true")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument(
        "--ours-extra", action="append", default=[],
        help='extra overrides for ours, repeatable: "Train.dy2st=True" or "-o Train.dy2st=True"',
    )  # fmt: skip
    parser.add_argument(
        "--paddleclas-repo", default=str(paddleclas_repo()), help="a PaddleClas git dir (env PADDLECLAS_REPO)"
    )
    parser.add_argument("--paddleclas-src", default=os.environ.get("PADDLECLAS_SRC", DEFAULT_PADDLECLAS_SRC))
    parser.add_argument("--ref-python", default=str(ref_python()), help="env REF_PYTHON")
    parser.add_argument(
        "--print-batch-step", type=int, default=10, help="PaddleClas log interval (iterations)"
    )
    parser.add_argument("--work-dir", default=None, help="default: a new temporary folder (kept)")
    parser.add_argument("--report", default=str(ROOT / "bench" / "results" / "train_speed.md"))
    args = parser.parse_args(argv)

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="train_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = prepare_dataset(Path(args.dataset_dir), args.train_limit, work)
    class_num = count_classes(dataset / "train.txt")
    print(f"work dir {work}; dataset {dataset}: {class_num} training classes")

    paddleclas = None if args.skip_paddleclas else run_paddleclas(args, dataset, work, class_num)
    ours = None if args.skip_ours else run_ours(args, dataset, work, class_num)

    note = f"Dataset `{args.dataset_dir}`" + (
        f", first {args.train_limit} classes only" if args.train_limit else ""
    )
    text = report(args, paddleclas, ours, note + ".")
    print("\n" + text)
    out = Path(args.report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written {out}")
    return 0 if all(r.returncode == 0 for r in (paddleclas, ours) if r) else 1


if __name__ == "__main__":
    sys.exit(main())
