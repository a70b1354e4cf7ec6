"""The one schema of config sections and keys: type, nullability, allowed values, default.

Keys that PaddleX's configs carry keep their PaddleX names. Keys we add have defaults here,
so a PaddleX-style YAML without them still works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODES = ("check_dataset", "train", "evaluate", "export", "predict", "build_index", "search", "serve")
HPI_BACKENDS = ("openvino", "onnxruntime", "paddle")  # use_hpip backends; hpi_config checks against these
PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # what high-performance inference may compute in
# (int8: the inference.int8.onnx that Export.precision=int8 writes, never made at run time)
MODEL_NAMES = (
    "PP-ShiTuV2_rec",
    "PP-ShiTuV2_rec_CLIP_vit_base",
    "PP-ShiTuV2_rec_CLIP_vit_large",
)

REQUIRED = object()  # sentinel: the key must come from the YAML or an override


@dataclass(frozen=True)
class Field:
    """One config key: its type, whether null is allowed, allowed values and default."""

    kind: type  # int, float, bool, str or list
    default: Any = REQUIRED
    nullable: bool = False
    choices: tuple | None = None
    item: type | None = None  # element type of a list
    str_or_list: bool = False  # a str that may also be a list of str (Predict.input)
    keywords: tuple[str, ...] = ()  # words accepted in place of a value (Index.score_threshold=auto)
    help: str = ""


SCHEMA: dict[str, Any] = {
    "Global": {
        "model": Field(str, choices=MODEL_NAMES, help="model name"),
        "mode": Field(str, choices=MODES, help="what to run"),
        "dataset_dir": Field(str, default="./dataset/demo", help="ShiTuRecDataset folder"),
        "device": Field(str, default="cpu", help="cpu, gpu, gpu:0 or gpu:0,1,..."),
        "output": Field(str, default="output", help="folder for every result file"),
        "seed": Field(int, default=42, help="seed for sampling, splits and init"),
        "debug": Field(bool, default=False, help="print tracebacks on failure"),
    },
    "CheckDataset": {
        "convert": {
            "enable": Field(bool, default=False),
            "src_dataset_type": Field(str, default=None, nullable=True),
        },
        "split": {
            "enable": Field(bool, default=False),
            "train_percent": Field(int, default=None, nullable=True),
            "gallery_percent": Field(int, default=None, nullable=True),
            "query_percent": Field(int, default=None, nullable=True),
            "seed": Field(int, default=0, help="split shuffle seed"),
            "by_class": Field(bool, default=True, help="gallery/query share classes"),
        },
        "num_workers": Field(int, default=None, nullable=True, help="image-decoding threads; null: auto"),
        "sample_num": Field(int, default=10, help="demo images drawn per list"),
    },
    "Train": {
        "num_classes": Field(int, default=None, nullable=True),
        "epochs_iters": Field(int, default=20),
        "batch_size": Field(int, default=128),
        "learning_rate": Field(float, default=0.01),
        "pretrain_weight_path": Field(str, default=None, nullable=True),
        "warmup_steps": Field(int, default=5, help="warm-up epochs, as in PaddleX"),
        "resume_path": Field(str, default=None, nullable=True),
        "log_interval": Field(int, default=1),
        "eval_interval": Field(int, default=1),
        "save_interval": Field(int, default=1),
        "keep_checkpoints": Field(
            int, default=5, help="epoch_N/ folders kept (besides latest/ and best_model/)"
        ),
        "dy2st": Field(bool, default=False),
        "amp": Field(bool, default=False),
        "input_size": Field(int, default=None, nullable=True, help="null: the model's 224"),
        "num_workers": Field(int, default=2),
        "relabel": Field(bool, default=True),
        "cpu_processes": Field(int, default=1, help="data-parallel CPU processes (gloo); the batch is split"),
    },
    "Evaluate": {
        "weight_path": Field(str, default="output/best_model/best_model.pdparams", nullable=True),
        "log_interval": Field(int, default=1),
        "topk": Field(list, default=[1, 5], item=int),
        "save_features": Field(bool, default=False),
        "batch_size": Field(int, default=64),
        "num_workers": Field(int, default=2),
        "backend": Field(
            str,
            default="auto",
            choices=("auto", "inference", "static", "eager"),
            help="feature extraction: auto = paddle.inference+oneDNN on CPU, static graph on GPU",
        ),
        "report": Field(bool, default=True, help="write evaluate_report.html and its PNGs"),
        "max_false_accept": Field(
            float,
            default=0.05,
            nullable=True,
            help="share of unknown queries allowed an answer at the recommended threshold; null: equal error",
        ),
    },
    "Export": {
        "weight_path": Field(str, default=None, nullable=True),
        "save_dir": Field(str, default=None, nullable=True, help="null: Global.output, as PaddleX"),
        "input_size": Field(
            int, default=None, nullable=True, help="null: the checkpoint's training size (224 without one)"
        ),
        # int8: post-training quantization into inference.int8.onnx beside the fp32 files (engine/quantize.py)
        "precision": Field(
            str, default="fp32", choices=("fp32", "int8"), help="int8: also write a checked int8 model"
        ),
        "calibration": Field(
            str, default=None, nullable=True, help="list file or image folder; null: the dataset's train.txt"
        ),
        "calibration_size": Field(
            int, default=300, help="images sampled (seeded, across classes) to calibrate"
        ),
        "max_recall_drop": Field(float, default=0.01, help="largest recall@1 loss (absolute) int8 may cost"),
        "allow_accuracy_drop": Field(
            bool, default=False, help="write the int8 model even past max_recall_drop"
        ),
    },
    "Predict": {
        "batch_size": Field(int, default=1),
        "model_dir": Field(str, default="output/best_model/inference", nullable=True),
        "input": Field(str, default=None, nullable=True, str_or_list=True),
        "kernel_option": {
            "run_mode": Field(str, default="paddle"),
        },
        "use_hpip": Field(bool, default=False),
        # high-performance inference (use_hpip=True); keys as create_model's hpi_config
        "hpi_config": {
            "backend": Field(
                str,
                default=None,
                nullable=True,
                choices=HPI_BACKENDS,
                help="null: the fastest installed backend",
            ),
            "precision": Field(
                str,
                default="fp32",
                choices=(*PRECISIONS, "auto"),
                help="bf16: CPUs that have it; int8: the folder's inference.int8.onnx (Export.precision=int8); "
                "auto: bf16 where AMX makes it faster, else fp32",
            ),
            "num_threads": Field(int, default=None, nullable=True, help="null: Predict.cpu_threads"),
            "cache_dir": Field(
                str, default=None, nullable=True, help="ONNX cache for read-only model folders"
            ),
        },
        "skip_errors": Field(bool, default=False),
        "cpu_threads": Field(int, default=None, nullable=True, help="null: every core"),
        "url_timeout": Field(float, default=10.0, help="seconds for a whole http(s) download"),
        "max_image_bytes": Field(int, default=64 * 1024 * 1024, help="largest http(s) image accepted"),
        "save_json": Field(
            bool, default=True, help="write {Global.output}/predict/<relative path>_res.json files"
        ),
    },
    "Index": {
        "model_dir": Field(
            str, default=None, nullable=True, help="inference folder; null: Predict.model_dir"
        ),
        "gallery": Field(
            str,
            default=None,
            nullable=True,
            help="list file ('path label'), or a folder of label sub-folders",
        ),
        "path": Field(str, default="output/index", help="the index folder (PaddleX's files plus ours)"),
        "index_type": Field(
            str,
            default="auto",
            choices=("auto", "Flat", "HNSW", "IVF", "IVF_PQ"),
            help="auto: Flat up to 100k images, then by memory_budget_mb",
        ),
        "metric": Field(str, default="IP", choices=("IP", "L2"), help="IP = cosine on normalised features"),
        "top_k": Field(int, default=5, help="answers per query"),
        "nprobe": Field(int, default=None, nullable=True, help="IVF lists searched; null: the index's own"),
        "ef_search": Field(
            int, default=None, nullable=True, help="HNSW search breadth; null: the index's own"
        ),
        "memory_budget_mb": Field(
            float, default=None, nullable=True, help="for index_type=auto; null: no limit"
        ),
        "score_threshold": Field(
            float,
            default=None,
            nullable=True,
            keywords=("auto",),
            help="top-1 under it is 'unknown' (top-k kept); auto: evaluate's recommended_threshold; null: none",
        ),
        "label_map": Field(
            str, default=None, nullable=True, help="'number name' lines; default label_dict.txt"
        ),
        "batch_size": Field(int, default=32, help="images embedded per batch"),
        "rehash": Field(
            bool,
            default=False,
            help="sync: hash every file; False: unchanged size and mtime keep the stored hash (as git does)",
        ),
        # Milvus: galleries bigger than one machine (pip install -e ".[milvus]")
        "backend": Field(
            str,
            default="faiss",
            choices=("faiss", "milvus"),
            help="faiss: the Index.path folder; milvus: a collection",
        ),
        "uri": Field(
            str,
            default="output/gallery.db",
            help="milvus: http(s)://host:19530, or a local *.db file (Milvus Lite)",
        ),
        "token": Field(
            str,
            default=None,
            nullable=True,
            help="milvus: 'user:password' or an API key; null: $MILVUS_TOKEN",
        ),
        "collection": Field(str, default="gallery", help="milvus: the collection holding the gallery"),
        "shard": Field(
            str,
            default=None,
            nullable=True,
            help="milvus build_index: 'i/n' embeds the i-th of n slices (1-based)",
        ),
        "create": Field(
            bool, default=True, help="milvus: create a missing collection; False: the collection must exist"
        ),
    },
    "Serve": {
        "host": Field(str, default="127.0.0.1", help="address to listen on; 0.0.0.0 exposes the service"),
        "port": Field(int, default=8080, help="PaddleX serves on 8080 too"),
        "model_dir": Field(str, default="output/best_model/inference", help="an exported inference folder"),
        "index": Field(str, default=None, nullable=True, help="gallery index folder searched by default"),
        "index_dir": Field(
            str,
            default=None,
            nullable=True,
            help="folder of indexes built by key; null: {Global.output}/indexes",
        ),
        "use_hpip": Field(bool, default=False),
        # hpi_config: the same keys as Predict.hpi_config (set below, one definition for both)
        "cpu_threads": Field(int, default=None, nullable=True, help="model threads; null: every core"),
        "max_batch_size": Field(int, default=8, help="images per model call, gathered across requests"),
        "max_wait_ms": Field(float, default=5.0, help="how long a batch waits to fill"),
        "max_queue": Field(
            int, default=64, help="images waiting for the model; beyond it: 503 + Retry-After"
        ),
        "workers": Field(int, default=2, help="image-decoding threads (one process: one index writer)"),
        "api_key": Field(
            str, default=None, nullable=True, help="key for index writes; or PADDLEX_FEAT_API_KEY"
        ),
        "max_image_bytes": Field(int, default=20 * 1024 * 1024, help="largest encoded image accepted"),
        "max_image_pixels": Field(int, default=40_000_000, help="largest width*height accepted"),
        "max_request_bytes": Field(int, default=256 * 1024 * 1024, help="largest request body"),
        "allow_urls": Field(bool, default=False, help="fetch http(s) image URLs (off: no internal fetches)"),
        "url_timeout": Field(float, default=10.0),
        "topk": Field(int, default=5, help="results per search when the request gives none"),
        "score_threshold": Field(
            float, default=None, nullable=True, help="below it a search says 'unknown'; null: the index's"
        ),
    },
}
SCHEMA["Serve"]["hpi_config"] = SCHEMA["Predict"]["hpi_config"]
