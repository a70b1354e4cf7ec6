"""Gallery index benchmark: every index type against exact Flat search, and sync against a full build.

    python bench/retrieval.py index [--n 1000000] [--types Flat HNSW IVF IVF_PQ] [--backend milvus]
    python bench/retrieval.py sync [--n 10000]
    python bench/retrieval.py pq [--n 100000]
    python bench/retrieval.py hnsw [--n 1000000] [--graphs 32/40 32/200] [--sweep 128 256 512]

``index``: data are ``--n`` 512-d L2-normalised vectors that are not uniform noise: a mixture of
``--clusters`` (20k) Gaussian clusters whose centres are real image features, and the queries are
real features of other images. Real features come from the emoji-vendors images (or dataset/demo)
embedded by PP-ShiTuV2_rec at input 64 (random weights with spread BatchNorm statistics, exported
with our export, run by our Predictor): centre j is feature (j mod R) of the train+gallery images
plus noise (sigma 0.35 / sqrt(512) per dim), and each gallery vector is a centre plus noise
(sigma 0.25 / sqrt(512)); queries are the query images' features. Each index type is built and
timed in its own subprocess (so its peak RSS is its own): build time, peak RSS above the loaded
data, index file size, single-query and batched queries/s, and recall@10 against exact Flat
answers on the same queries, plus the ratios to Flat from the same run.

``index --backend milvus``: the same, and beside each faiss type the same type in a Milvus Lite
collection (a temp ``*.db`` path, through ``MilvusStore``, the store ``Index.backend=milvus`` uses):
insert rate, build time (inserts, the flush, and the background segment index builds, waited for:
Milvus Lite searches a segment whose index is not built yet by brute force), size on disk, single
and batched q/s and recall@10 against the same exact answers, and the recall@10 that build_index
measures and writes into the collection meta (200 gallery vectors as queries, exact answers from the
vectors the build inserted) with its cost. Milvus Lite cannot build IVF_PQ, so that type is faiss
only. ``--milvus-only`` builds only Flat on the faiss side (it gives the exact answers).

``hnsw``: the same data and queries; HNSW graphs of each ``--graphs`` M/efConstruction, all held in one
process, searched with each ``--sweep`` ef_search, and timed against Flat interleaved (every case in turn,
``--rounds`` times, the median): which graph reaches a recall at the fewest distance computations.

``sync``: a ``--n`` image folder gallery (emoji images, each made distinct by one pixel), embedded by
PP-ShiTuV2_rec at input 64 (so the embedding cost is real); then 1% of the files change and
``build_index`` syncs. Prints both times and their ratio (the sync time covers hashing every file,
embedding the changed ones, removing and adding, and saving the folder; so does the build's).
"""

from __future__ import annotations

import os

# Spinning OpenMP threads wait for each other on an oversubscribed host (this one: 2 cores, 7 agents):
# measured here, exact single queries ran 15x slower with the default (active) wait policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from paths import ROOT, bench_dataset  # noqa: E402

sys.path.insert(0, str(ROOT))
EMOJI = bench_dataset()  # $BENCH_DATASET, else ../shared/data/emoji-vendors; the demo when absent
CACHE = Path(tempfile.gettempdir()) / "pxf_bench_retrieval"
DIM = 512
INPUT = 64


def export_model(folder: Path) -> Path:
    """PP-ShiTuV2_rec at input 64, random weights with spread BN statistics (so features differ)."""
    if (folder / "inference.yml").is_file():
        return folder
    import paddle

    from paddlex_feat.engine.export import export_inference
    from paddlex_feat.models import build_model

    paddle.seed(0)
    model = build_model("PP-ShiTuV2_rec", 10)
    rng = np.random.default_rng(0)
    for name, value in model.state_dict().items():
        if name.endswith("_mean"):
            value.set_value(rng.normal(0, 0.5, value.shape).astype("float32"))
        elif name.endswith("_variance"):
            value.set_value(rng.uniform(0.2, 2.0, value.shape).astype("float32"))
    model.eval()
    export_inference(model, "PP-ShiTuV2_rec", folder, input_size=INPUT)
    return folder


def dataset_dir() -> Path:
    return EMOJI if (EMOJI / "query.txt").is_file() else ROOT / "dataset" / "demo"


def real_features() -> tuple[np.ndarray, np.ndarray]:
    """(train+gallery features, query features) of the emoji images, cached."""
    out = CACHE / "real_features.npz"
    if out.is_file():
        data = np.load(out)
        return data["base"], data["queries"]
    from paddlex_feat import create_model
    from paddlex_feat.data.lists import read_list

    root = dataset_dir()
    model = create_model("PP-ShiTuV2_rec", model_dir=str(export_model(CACHE / "model")), batch_size=32)

    def embed(split: str) -> np.ndarray:
        paths = [str(root / e.path) for e in read_list(root, split)]
        return np.stack([r.feature for r in model.predict(paths)])

    base = np.concatenate([embed("train"), embed("gallery")])
    queries = embed("query")
    np.savez(out, base=base, queries=queries)
    return base, queries


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(n: int, clusters: int, seed: int = 0) -> Path:
    """The gallery (.npy, float32 [n, 512]) and queries, cached by size."""
    path = CACHE / f"gallery_{n}_{clusters}.npy"
    if path.is_file():
        return path
    base, _ = real_features()
    rng = np.random.default_rng(seed)
    centres = unit(
        base[np.arange(clusters) % len(base)] + rng.normal(0, 0.35 / np.sqrt(DIM), (clusters, DIM))
    )
    gallery = np.lib.format.open_memmap(path.with_suffix(".tmp.npy"), "w+", np.float32, (n, DIM))
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        pick = rng.integers(0, clusters, m)
        gallery[start : start + m] = unit(centres[pick] + rng.normal(0, 0.25 / np.sqrt(DIM), (m, DIM)))
    gallery.flush()
    del gallery
    os.replace(path.with_suffix(".tmp.npy"), path)
    return path


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRSS:
    """Samples the resident memory every 20 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        self.peak, self._stop = rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peak, rss_mb())


SWEEP_KEY = {"HNSW": "ef_search", "IVF": "nprobe", "IVF_PQ": "nprobe"}  # the search knob --sweep varies


def time_search(store, q: np.ndarray, single: int, params: dict | None) -> tuple[float, float, np.ndarray]:
    """(single-query q/s, batched q/s, batched top-10 ids) with these search parameters."""
    store.search(q[:5], 10, params)  # warm-up
    t = time.perf_counter()
    for i in range(single):
        store.search(q[i : i + 1], 10, params)
    single_qps = single / (time.perf_counter() - t)
    t = time.perf_counter()
    _, ids = store.search(q, 10, params)
    return single_qps, len(q) / (time.perf_counter() - t), ids


def worker(index_type: str, data: Path, queries: int, single: int, out: Path, sweep: str = "") -> None:
    """Build one index type, time it (and each --sweep value of its search knob), write its figures."""
    import faiss

    from paddlex_feat.retrieval.faiss_store import FaissStore
    from paddlex_feat.retrieval.index_types import plan_index
    from paddlex_feat.retrieval.store import ItemRecord

    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    gallery = np.load(data)
    _, q_all = real_features()
    q = np.ascontiguousarray(q_all[:queries])
    base = rss_mb()
    sampler = PeakRSS()
    start = time.perf_counter()
    plan = plan_index(index_type, len(gallery), DIM)
    store = FaissStore.create(DIM, "IP", plan, gallery)
    for s in range(0, len(gallery), 200_000):  # ids and records as GalleryIndex adds them
        chunk = gallery[s : s + 200_000]
        store.add(chunk, [ItemRecord(-1, f"c{s + i}") for i in range(len(chunk))])
    build_s = time.perf_counter() - start
    peak_mb = sampler.stop() - base
    folder = Path(tempfile.mkdtemp(prefix="pxf_bench_idx_"))
    store.save(str(folder / "idx"))
    size_mb = (folder / "idx" / "vector.index").stat().st_size / 2**20
    shutil.rmtree(folder)
    single_qps, batch_qps, ids = time_search(store, q, single, None)
    np.save(out.with_suffix(".ids.npy"), ids)
    swept = []
    key = SWEEP_KEY.get(plan.index_type)
    for value in [int(v) for v in sweep.split(",") if v] if key else []:
        s_qps, b_qps, s_ids = time_search(store, q, single, {key: value})
        np.save(out.with_suffix(f".{value}.ids.npy"), s_ids)
        swept.append(
            {"params": {**plan.params, key: value}, "single_qps": s_qps, "batch_qps": b_qps, "value": value}
        )
    out.write_text(json.dumps({
        "index_type": plan.index_type, "params": plan.params, "build_s": build_s, "peak_rss_mb": peak_mb,
        "size_mb": size_mb, "single_qps": single_qps, "batch_qps": batch_qps, "single_queries": single,
        "swept": swept,
    }))  # fmt: skip


def milvus_worker(index_type: str, data: Path, queries: int, single: int, out: Path) -> None:
    """The same measurements on a Milvus Lite collection (runs in its own process)."""
    import hashlib

    from paddlex_feat.retrieval.index_types import plan_index
    from paddlex_feat.retrieval.milvus_build import InsertedVectors, record_recall
    from paddlex_feat.retrieval.milvus_store import MilvusStore, MilvusTarget
    from paddlex_feat.retrieval.store import IndexMeta, ItemRecord

    gallery = np.load(data)
    _, q_all = real_features()
    q = np.ascontiguousarray(q_all[:queries])
    folder = Path(tempfile.mkdtemp(prefix="pxf_bench_milvus_"))
    plan = plan_index(index_type, len(gallery), DIM)
    meta = IndexMeta(
        None, None, DIM, index_type=plan.index_type, index_params=dict(plan.params), backend="milvus"
    )
    base = rss_mb()
    sampler = PeakRSS()
    start = time.perf_counter()
    inserted = InsertedVectors()  # as fill_collection logs them, for recall@10 at build
    with MilvusStore.create(
        MilvusTarget(str(folder / "bench.db"), "bench"), DIM, "IP", plan, meta=meta
    ) as store:
        keys = []
        for s in range(0, len(gallery), 10_000):
            chunk = gallery[s : s + 10_000]
            records = [
                ItemRecord(-1, f"c{s + i}", None, hashlib.sha256(str(s + i).encode()).hexdigest())
                for i in range(len(chunk))
            ]
            keys.append(store.add(chunk, records))
            inserted.add(keys[-1], chunk)
            print(
                f"  inserted {s + len(chunk)} rows, {time.perf_counter() - start:.0f} s, RSS {rss_mb():.0f} MB",
                flush=True,
            )
        insert_s = time.perf_counter() - start
        # the flush, then the background segment index builds: searched before they end, rows are brute-forced
        indexed = store.wait_for_index()
        build_s = time.perf_counter() - start
        store.search(q[:5], 10)  # warm-up
        peak_mb = sampler.stop() - base  # Milvus Lite runs in this process: its memory is counted
        size_mb = sum(f.stat().st_size for f in (folder / "bench.db").rglob("*") if f.is_file()) / 2**20
        t = time.perf_counter()
        for i in range(single):
            store.search(q[i : i + 1], 10)
        single_qps = single / (time.perf_counter() - t)
        t = time.perf_counter()
        _, ids = store.search(q, 10)
        batch_qps = len(q) / (time.perf_counter() - t)
        record_recall(meta, store, inserted)  # what build_index writes into the collection meta
        peak_mb = max(peak_mb, rss_mb() - base)
    inserted.close()
    shutil.rmtree(folder)
    row_of = {int(k): r for r, k in enumerate(np.concatenate(keys))}  # content keys -> gallery rows
    np.save(out.with_suffix(".ids.npy"), np.vectorize(lambda k: row_of.get(int(k), -1))(ids))
    out.write_text(json.dumps({
        "index_type": plan.index_type, "params": plan.params, "build_s": build_s, "peak_rss_mb": peak_mb,
        "size_mb": size_mb, "single_qps": single_qps, "batch_qps": batch_qps, "single_queries": single,
        "insert_rows_per_s": len(gallery) / insert_s, "build_recall": meta.recall_at_10, "indexed": indexed,
        "build_recall_s": meta.extra["recall_at_10"]["seconds"],
    }))  # fmt: skip


def bench_index(args: argparse.Namespace) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    data = make_data(args.n, args.clusters)
    print(
        f"data: {args.n} x {DIM} ({args.clusters} clusters) ready in {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    rows = {}
    runs = [("worker", k, k) for k in ["Flat"] + [k for k in args.types if k != "Flat"]]
    if args.milvus_only:  # faiss builds only Flat, for the exact answers
        runs = runs[:1]
    if args.backend == "milvus":  # beside faiss, in the same run: Milvus Lite builds all but IVF_PQ
        runs += [
            ("milvus_worker", k, f"Milvus Lite {k}") for k in args.types if k != "IVF_PQ" and "+" not in k
        ]
    for worker_name, kind, name in runs:
        out = CACHE / f"result_{name.replace(' ', '_')}_{args.n}.json"
        single = args.flat_single if kind == "Flat" else args.single
        queries = args.flat_queries if kind == "Flat" else args.queries
        cmd = [sys.executable, __file__, worker_name, kind, str(data), str(queries), str(single), str(out)]
        if worker_name == "worker" and args.sweep:
            cmd.append(",".join(str(v) for v in args.sweep))
        subprocess.run(cmd, check=True)
        rows[name] = json.loads(out.read_text())
        rows[name]["ids"] = np.load(out.with_suffix(".ids.npy"))
        for sw in rows[name].pop("swept", []):  # the same build searched with another knob value
            key = SWEEP_KEY[rows[name]["index_type"]]
            ids = np.load(out.with_suffix(f".{sw['value']}.ids.npy"))
            rows[f"{name} {key}={sw['value']}"] = {**rows[name], **sw, "ids": ids}
        print(f"{name}: built in {rows[name]['build_s']:.1f} s", flush=True)
    exact = rows["Flat"]["ids"]
    n_judged = len(exact)
    flat = rows["Flat"]
    print(f"\n{args.n} vectors, {DIM}-d; recall@10 on {n_judged} real queries against exact Flat answers")
    print(
        "| type | params | build s | peak RSS over data MB | index MB | size vs Flat | single q/s | x Flat | batch q/s | recall@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, r in rows.items():
        ids = r["ids"][:n_judged]
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact)])
        params = ",".join(
            f"{k}={v}"
            for k, v in r["params"].items()
            if k in ("nlist", "nprobe", "M", "ef_construction", "ef_search", "pq_m", "pq_bits")
        )
        print(
            f"| {kind} | {params or '-'} | {r['build_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['size_mb']:.0f} | "
            f"{r['size_mb'] / flat['size_mb']:.3f} | {r['single_qps']:.1f} | {r['single_qps'] / flat['single_qps']:.3g}x | "
            f"{r['batch_qps']:.0f} | {recall:.3f} |"
        )
    if args.backend == "milvus":
        print(
            "\n| type | insert rows/s (faiss: n / build s) | recall@10 measured at build | its cost s |\n|---|---|---|---|"
        )
        for kind, r in rows.items():
            measured = r.get("build_recall")
            print(
                f"| {kind} | {r.get('insert_rows_per_s', args.n / r['build_s']):.0f} | "
                f"{'-' if measured is None else f'{measured:.3f}'} | {r.get('build_recall_s', '-')} |"
            )


def bench_hnsw(args: argparse.Namespace) -> None:
    """HNSW graphs of several (M, efConstruction) against Flat: recall@10 and single-query speed per
    ef_search, timed interleaved (round-robin over every graph, ef and Flat, median of --rounds)."""
    import faiss

    from paddlex_feat.retrieval.faiss_store import FaissStore
    from paddlex_feat.retrieval.index import overlap_recall
    from paddlex_feat.retrieval.index_types import IndexPlan
    from paddlex_feat.retrieval.store import ItemRecord

    faiss.omp_set_num_threads(len(os.sched_getaffinity(0)))
    CACHE.mkdir(parents=True, exist_ok=True)
    gallery = np.load(make_data(args.n, args.clusters))
    _, q_all = real_features()
    q = np.ascontiguousarray(q_all[: args.queries])
    records = [ItemRecord(-1, f"c{i}") for i in range(len(gallery))]
    flat = FaissStore.create(DIM, "IP", IndexPlan("Flat"), gallery)
    flat.add(gallery, records)
    _, exact = flat.search(q, 10)
    graphs = {}
    for spec in args.graphs:
        m, efc, storage = (spec.split("/") + ["fp16"])[:3]
        key = (int(m), int(efc), storage)
        start = time.perf_counter()
        params = {"M": key[0], "ef_construction": key[1], "storage": storage}
        store = FaissStore.create(DIM, "IP", IndexPlan("HNSW", params), gallery)
        store.add(gallery, records)
        graphs[key] = (store, time.perf_counter() - start)
        print(f"HNSW M={m} efConstruction={efc} {storage}: built in {graphs[key][1]:.1f} s", flush=True)
    cases = {("Flat", 0): (flat, None)}
    recall = {("Flat", 0): 1.0}
    for key, (store, _) in graphs.items():
        for ef in args.sweep:
            cases[(key, ef)] = (store, {"ef_search": ef})
            _, ids = store.search(q, 10, {"ef_search": ef})
            recall[(key, ef)] = overlap_recall(exact, ids)
    times: dict = {case: [] for case in cases}
    for _ in range(args.rounds):  # round-robin: load changes hit every case alike
        for case, (store, params) in cases.items():
            single = args.flat_single if case[0] == "Flat" else args.single
            start = time.perf_counter()
            for i in range(single):
                store.search(q[i % len(q) : i % len(q) + 1], 10, params)
            times[case].append(single / (time.perf_counter() - start))
    flat_qps = float(np.median(times[("Flat", 0)]))
    print(f"\n{args.n} vectors ({args.clusters} clusters), {len(q)} real queries; single q/s: median of "
          f"{args.rounds} interleaved rounds; Flat {flat_qps:.1f} q/s")  # fmt: skip
    print(
        "| M | efConstruction | storage | build s | ef_search | recall@10 | single q/s | x Flat |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for case in cases:
        if case[0] == "Flat":
            continue
        (m, efc, storage), ef = case
        qps = float(np.median(times[case]))
        print(
            f"| {m} | {efc} | {storage} | {graphs[case[0]][1]:.0f} | {ef} | {recall[case]:.3f} | {qps:.1f} | "
            f"{qps / flat_qps:.1f}x |"
        )


def bench_pq(args: argparse.Namespace) -> None:
    """Why IVF_PQ's recall is low here: IP gaps between exact neighbours, against 4-bit PQ with and without re-ranking."""
    import faiss

    gallery = np.ascontiguousarray(np.load(make_data(args.source_n, args.clusters), mmap_mode="r")[: args.n])
    _, q_all = real_features()
    q = np.ascontiguousarray(q_all[:200])
    flat = faiss.IndexFlatIP(DIM)
    flat.add(gallery)
    scores, exact = flat.search(q, 250)
    gaps = {f"top1-top{j + 1}": float(np.median(scores[:, 0] - scores[:, j])) for j in (9, 99, 249)}
    print(json.dumps({"vectors": args.n, "median_ip_gap": gaps}), flush=True)
    nlist = int(np.sqrt(args.n))
    train = gallery[np.sort(np.random.default_rng(0).choice(args.n, min(args.n, 64 * nlist), replace=False))]
    for factory in (f"IVF{nlist},Flat", f"IVF{nlist},PQ128x4,RFlat"):
        index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
        index.train(train)
        index.add(gallery)
        for nprobe in (8, 32):
            ivf = faiss.SearchParametersIVF(nprobe=nprobe)
            for k_factor in (1, 10, 50) if "RFlat" in factory else (0,):
                params = (
                    ivf
                    if not k_factor
                    else faiss.IndexRefineSearchParameters(k_factor=k_factor, base_index_params=ivf)
                )
                if k_factor == 1:  # the PQ ranking alone, as the IVF_PQ type answers
                    params = ivf
                    _, ids = faiss.downcast_index(index.base_index).search(q, 10, params=params)
                else:
                    _, ids = index.search(q, 10, params=params)
                recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact[:, :10])])
                label = (
                    "PQ128x4 alone"
                    if k_factor == 1
                    else (f"re-ranked x{k_factor}" if k_factor else "exact codes")
                )
                print(f"{factory} nprobe={nprobe} {label}: recall@10 {recall:.3f}", flush=True)


def bench_sync(args: argparse.Namespace) -> None:
    import cv2

    from paddlex_feat import build_index, create_model, load_index

    CACHE.mkdir(parents=True, exist_ok=True)
    root = dataset_dir()
    sources = sorted(p for p in (root / "images").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    folder = Path(tempfile.mkdtemp(prefix="pxf_bench_sync_"))
    gallery = folder / "gallery"
    for i in range(args.n):
        img = cv2.imread(str(sources[i % len(sources)]))
        img[0, 0] = (i % 256, (i // 256) % 256, (i // 65536) % 256)  # distinct content per file
        label = f"class {i % 1000}"
        (gallery / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(gallery / label / f"{i}.png"), img)
    model = create_model("PP-ShiTuV2_rec", model_dir=str(export_model(CACHE / "model")), batch_size=32)
    t = time.perf_counter()
    build_index(model, str(gallery)).save(folder / "index")
    build_s = time.perf_counter() - t
    changed = sorted(gallery.rglob("*.png"))[::100][: args.n // 100]
    for p in changed:
        img = cv2.imread(str(p))
        img[1, 1] = 255 - img[1, 1]
        cv2.imwrite(str(p), img)
    t = time.perf_counter()
    index = load_index(folder / "index", model=model)
    report = index.sync(model, str(gallery))
    index.save()
    sync_s = time.perf_counter() - t
    shutil.rmtree(folder)
    print(json.dumps({
        "gallery": args.n, "changed": len(changed), "full_build_s": round(build_s, 2), "sync_s": round(sync_s, 2),
        "sync_over_build": round(sync_s / build_s, 4), "added": len(report.added), "removed": len(report.removed),
        "unchanged": report.unchanged,
    }, indent=2))  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("worker", "milvus_worker"):
        if sys.argv[1] == "worker":
            worker(
                sys.argv[2],
                Path(sys.argv[3]),
                int(sys.argv[4]),
                int(sys.argv[5]),
                Path(sys.argv[6]),
                *sys.argv[7:8],
            )
        else:
            milvus_worker(
                sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), Path(sys.argv[6])
            )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("index")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--clusters", type=int, default=20_000)
    p.add_argument(
        "--types",
        nargs="+",
        default=["Flat", "HNSW", "IVF", "IVF_PQ"],
        help="index types to build beside Flat",
    )
    p.add_argument("--queries", type=int, default=1000, help="batched queries (recall is judged on Flat's)")
    p.add_argument("--single", type=int, default=500, help="one-at-a-time queries timed per ANN type")
    p.add_argument("--flat-queries", type=int, default=200, help="exact answers to judge recall on")
    p.add_argument("--flat-single", type=int, default=20, help="one-at-a-time exact queries timed")
    p.add_argument(
        "--sweep",
        type=int,
        nargs="+",
        default=[],
        help="also search each build with these ef_search (HNSW) / nprobe (IVF) values",
    )
    p.add_argument(
        "--backend", choices=("faiss", "milvus"), default="faiss", help="milvus: Milvus Lite beside faiss"
    )
    p.add_argument(
        "--milvus-only",
        action="store_true",
        help="with --backend milvus: faiss builds only Flat (exact answers)",
    )
    pq = sub.add_parser(
        "pq", help="IVF_PQ's recall explained: neighbour IP gaps, PQ with and without re-ranking"
    )
    pq.add_argument("--n", type=int, default=100_000, help="the first n vectors of the --source-n data")
    pq.add_argument("--source-n", type=int, default=200_000)
    pq.add_argument("--clusters", type=int, default=20_000)
    h = sub.add_parser("hnsw", help="HNSW graph parameters: recall and single-query speed against Flat")
    h.add_argument("--n", type=int, default=1_000_000)
    h.add_argument("--clusters", type=int, default=20_000)
    h.add_argument(
        "--graphs",
        nargs="+",
        default=["32/40/fp32", "32/100/fp16"],
        help="M/efConstruction[/fp16|fp32] of each graph (storage: fp16 when left out)",
    )
    h.add_argument("--sweep", type=int, nargs="+", default=[128, 256, 512], help="ef_search values")
    h.add_argument("--queries", type=int, default=200, help="real queries (recall against exact Flat)")
    h.add_argument("--single", type=int, default=200, help="one-at-a-time queries per case and round")
    h.add_argument("--flat-single", type=int, default=10, help="one-at-a-time exact queries per round")
    h.add_argument("--rounds", type=int, default=3)
    s = sub.add_parser("sync")
    s.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    {"index": bench_index, "pq": bench_pq, "sync": bench_sync, "hnsw": bench_hnsw}[args.what](args)


if __name__ == "__main__":
    main()
