"""Predictor: correct batching, order, inputs of every kind, and clear errors for bad ones."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from infer_helpers import random_bgr

from paddlex_feat.inference import Predictor
from paddlex_feat.inference.inputs import ImageReadError
from paddlex_feat.utils.errors import ModelError, UsageError


@pytest.fixture(scope="module")
def predictor(tiny_model_dir: Path) -> Predictor:
    return Predictor(tiny_model_dir, cpu_threads=1)


def test_batch_8_gives_each_image_its_own_row_equal_to_batch_1(predictor: Predictor, image_dir: Path) -> None:
    singles = list(predictor.predict(image_dir, batch_size=1))
    batched = list(predictor.predict(image_dir, batch_size=8))  # 11 images: 8 + a partial batch of 3
    assert len(singles) == len(batched) == 11
    for one, many in zip(singles, batched):
        assert one["input_path"] == many["input_path"]
        assert many.feature.shape == (512,) and many.feature.dtype == np.float32
        np.testing.assert_allclose(many.feature, one.feature, atol=1e-5)
    # distinct images give distinct features: a batch-wide or shared row would fail here
    assert not np.allclose(batched[0].feature, batched[1].feature, atol=1e-3)


def test_features_are_unit_length(predictor: Predictor, image_dir: Path) -> None:
    for res in predictor.predict(image_dir, batch_size=4):
        assert abs(float(np.linalg.norm(res.feature)) - 1.0) < 1e-5


def test_folder_is_walked_recursively_in_sorted_order(predictor: Predictor, image_dir: Path) -> None:
    paths = [Path(r["input_path"]).relative_to(image_dir).as_posix() for r in predictor.predict(image_dir)]
    assert paths == sorted(paths)
    assert {"a/y.PNG", "b/deep/w.webp", "b/deep/z.bmp", "c.JPG"} <= set(paths)
    assert "notes.txt" not in paths


def test_mixed_list_keeps_input_order(predictor: Predictor, image_dir: Path) -> None:
    array = random_bgr(99)
    inputs = [str(image_dir / "c.JPG"), array, image_dir / "a", str(image_dir / "n0.png")]
    results = list(predictor.predict(inputs, batch_size=3))
    assert [r["input_path"] for r in results] == [
        str(image_dir / "c.JPG"),
        None,
        str(image_dir / "a" / "x.jpg"),
        str(image_dir / "a" / "y.PNG"),
        str(image_dir / "n0.png"),
    ]
    assert [r.index for r in results] == list(range(5))


def test_numpy_bgr_matches_the_file_it_came_from(predictor: Predictor, image_dir: Path) -> None:
    path = image_dir / "n1.png"  # PNG: lossless, so the decoded file equals the array
    (from_file,) = predictor.predict(str(path))
    (from_array,) = predictor.predict(cv2.imread(str(path)))
    np.testing.assert_allclose(from_array.feature, from_file.feature, atol=1e-6)


def test_gray_and_bgra_arrays_are_accepted(predictor: Predictor) -> None:
    bgr = random_bgr(3)
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    res_bgr, res_bgra, res_gray, res_gray1 = predictor.predict([bgr, bgra, gray, gray[:, :, None]])
    np.testing.assert_allclose(res_bgra.feature, res_bgr.feature, atol=1e-6)
    np.testing.assert_allclose(res_gray1.feature, res_gray.feature, atol=1e-6)


def test_results_stream_lazily_with_a_length(predictor: Predictor, image_dir: Path) -> None:
    stream = predictor.predict(image_dir, batch_size=2)
    assert len(stream) == 11
    first = next(stream)
    assert first.feature.shape == (512,)
    stream.close()


# -- bad input: one test each ----------------------------------------------------------------------


def test_missing_model_dir(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"does not exist.*Global.mode=export"):
        Predictor(tmp_path / "nowhere")


def test_model_dir_without_inference_yml(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "inference.yml").unlink()
    with pytest.raises(ModelError, match=r"inference\.yml does not exist"):
        Predictor(folder)


def test_model_dir_with_corrupt_inference_yml(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "inference.yml").write_text("Global:\n  model_name: PP-ShiTuV2_rec\nPreProcess: [unclosed\n")
    with pytest.raises(ModelError, match=r"inference\.yml:\d+: inference\.yml is not valid YAML"):
        Predictor(folder)


def test_model_dir_without_params(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "inference.pdiparams").unlink()
    with pytest.raises(ModelError, match=r"inference\.pdiparams missing"):
        Predictor(folder)


def test_model_dir_with_corrupt_program(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "inference.json").write_text("{ not a program")
    with pytest.raises(ModelError, match=r"could not load .*inference\.json.*re-export"):
        Predictor(folder)


def test_model_dir_for_another_model_names_both(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match=r"PP-ShiTuV2_rec.*PP-ShiTuV2_rec_CLIP_vit_base"):
        Predictor(tiny_model_dir, model_name="PP-ShiTuV2_rec_CLIP_vit_base")


def test_nonexistent_input_path(predictor: Predictor, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.jpg does not exist"):
        predictor.predict(str(tmp_path / "nope.jpg"))


def test_empty_folder(predictor: Predictor, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(UsageError, match=r"holds no images"):
        predictor.predict(str(tmp_path / "empty"))


def test_text_file_renamed_jpg_names_the_file(predictor: Predictor, image_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_text("this is text, not a JPEG")
    stream = predictor.predict([str(image_dir / "c.JPG"), str(fake)])
    first = next(stream)  # the good image before it still comes out
    assert first.feature is not None
    with pytest.raises(ImageReadError, match=r"Cannot decode .*fake\.jpg.*skip_errors"):
        next(stream)


def test_skip_errors_yields_an_error_result_in_place(
    predictor: Predictor, image_dir: Path, tmp_path: Path
) -> None:
    fake = tmp_path / "fake.jpg"
    fake.write_text("text")
    inputs = [str(image_dir / "c.JPG"), str(fake), str(tmp_path / "missing.png"), str(image_dir / "n0.png")]
    results = list(predictor.predict(inputs, batch_size=4, skip_errors=True))
    assert [r.ok for r in results] == [True, False, False, True]
    assert "fake.jpg" in results[1].error and results[1].feature is None
    assert "missing.png does not exist" in results[2].error


def test_one_pixel_image_gives_a_feature(predictor: Predictor, tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.full((1, 1, 3), 200, np.uint8))
    (res,) = predictor.predict(str(path))
    assert res.feature.shape == (512,) and np.isfinite(res.feature).all()


def test_16_bit_png_reads_as_its_8_bit_image(predictor: Predictor, tmp_path: Path) -> None:
    img8 = random_bgr(5)
    cv2.imwrite(str(tmp_path / "img8.png"), img8)
    cv2.imwrite(str(tmp_path / "img16.png"), img8.astype(np.uint16) * 257)  # 16-bit, same picture
    res8, res16 = predictor.predict([str(tmp_path / "img8.png"), str(tmp_path / "img16.png")])
    np.testing.assert_allclose(res16.feature, res8.feature, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16, np.int64])
def test_array_with_wrong_dtype(predictor: Predictor, dtype: type) -> None:
    with pytest.raises(UsageError, match=rf"dtype {np.dtype(dtype)}.*uint8"):
        predictor.predict(np.zeros((8, 8, 3), dtype=dtype))


@pytest.mark.parametrize("shape", [(8,), (2, 8, 8, 3), (8, 8, 2)])
def test_array_with_wrong_rank_or_channels(predictor: Predictor, shape: tuple) -> None:
    with pytest.raises(UsageError, match=r"array has shape"):
        predictor.predict(np.zeros(shape, dtype=np.uint8))


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True])
def test_batch_size_zero_negative_or_not_int(
    predictor: Predictor, image_dir: Path, batch_size: object
) -> None:
    with pytest.raises(UsageError, match=r"batch_size must be a positive integer"):
        predictor.predict(image_dir, batch_size=batch_size)


def test_unreachable_url_fails_fast_naming_it(predictor: Predictor) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: bind, read the number, close
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cat.jpg"
    start = time.monotonic()
    with pytest.raises(ImageReadError, match=rf"Could not download {url}"):
        list(predictor.predict(url))
    assert time.monotonic() - start < 5


def test_url_timeout_is_honoured(tiny_model_dir: Path) -> None:
    import socket

    with socket.socket() as server:  # accepts connections but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/slow.jpg"
        slow = Predictor(tiny_model_dir, cpu_threads=1, url_timeout=0.5)
        start = time.monotonic()
        with pytest.raises(ImageReadError, match=r"timed out|timeout"):
            list(slow.predict(url))
        assert time.monotonic() - start < 5


def test_input_of_unsupported_type(predictor: Predictor) -> None:
    with pytest.raises(UsageError, match=r"dict is not an input"):
        predictor.predict({"path": "a.jpg"})


def test_a_single_bad_image_raises_or_is_skipped(predictor: Predictor, tmp_path: Path) -> None:
    # one input takes the inline path (no decode thread): errors must behave as for many inputs
    fake = tmp_path / "fake.jpg"
    fake.write_text("text")
    with pytest.raises(ImageReadError, match=r"Cannot decode .*fake\.jpg"):
        list(predictor.predict(str(fake)))
    (res,) = predictor.predict(str(fake), skip_errors=True)
    assert not res.ok and "fake.jpg" in res.error and res.feature is None


def test_single_image_and_streamed_features_agree_and_threads_are_reused(
    predictor: Predictor, image_dir: Path
) -> None:
    paths = sorted(str(p) for p in image_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))[:3]
    one_by_one = np.stack([next(iter(predictor.predict(p))).feature for p in paths])
    streamed = np.stack([r.feature for r in predictor.predict(paths, batch_size=1)])
    pool = predictor._decode_pool()
    list(predictor.predict(paths, batch_size=2))
    assert predictor._decode_pool() is pool  # not a new pool per call
    np.testing.assert_allclose(one_by_one, streamed, rtol=0, atol=1e-6)
