"""The product against what a user would otherwise write, per kind of film, interleaved in one run.

    python benchmarks/peers.py --films ../shared/data --out benchmarks/peers

Needs OpenCV and pydicom (both in the ``[dev]`` extra; OpenCV alone is the ``[fast]`` extra).

Films of five kinds are made in a temporary folder from the shared films (224 px
training JPEGs; 1024 px PNGs; noisy 12 MP phone-like JPEG photos of those films;
2500 x 2000 16-bit PNG scans; JPEG Baseline DICOM files of 1024 px films). Each
timed call takes a film's path to a probability, with one interpreter thread and
the shipped default model (``DEFAULT_MODEL``, whatever it names):

- product: ``Classifier.predict(path)``, quality gate and all (with OpenCV's decoders where they
  give Pillow's pixels: the ``[fast]`` extra);
- product_pillow: the same without the ``[fast]`` extra (Pillow decodes everything);
- notebook: Pillow, ``convert("RGB")``, resize, a float array, the model's float32
  sibling (the int8 model itself when there is none);
- tflite_example: the TFLite Raspberry Pi example (Pillow RGB, resize, raw uint8 in);
- opencv: ``imread`` grey (``IMREAD_REDUCED_GRAYSCALE_N`` for large JPEGs), ``INTER_AREA``;
- floor: the fastest decoder available for the kind (timed beforehand), ``INTER_AREA``,
  and nothing else: what any pipeline must at least spend.

The pipelines take turns film by film, in a new random order each round (seeded), so a
change in the machine's load falls on all of them alike. Each has an interpreter of its
own, as it would in a user's program: pipelines sharing one, run one after another, find
the model's weights still in the cache and are timed faster than they would run alone. Medians and
interquartile ranges come from :func:`pneumo_edge.edge.bench.measure.summarize`,
the code ``pneumo bench`` measures with. DICOM films are read by the peers with
pydicom (Pillow cannot open them), and by OpenCV and the floor from the frame's
JPEG bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from pneumo_edge.edge import adapters
from pneumo_edge.edge.bench.machine import machine_info
from pneumo_edge.edge.bench.measure import summarize
from pneumo_edge.edge.card import preprocess_spec, read_card
from pneumo_edge.edge.classifier import Classifier, Options, default_model
from pneumo_edge.edge.films import opencv as opencv_decoders
from pneumo_edge.edge.preprocess import SCALINGS
from pneumo_edge.edge.runtime import load_runtime

SCHEMA = "pneumo-peers/1"
PIPELINES = ("product", "product_pillow", "notebook", "tflite_example", "opencv", "floor")
KINDS = {
    "jpeg224": "224 px JPEG",
    "png1024": "1024 px PNG",
    "phone12mp": "12 MP JPEG (noisy phone photo of a film)",
    "png16": "2500 x 2000 16-bit PNG",
    "dicom_jpeg": "DICOM, JPEG Baseline, 1024 px",
}


# -- the films -----------------------------------------------------------------------------------


def make_films(data: Path, out: Path, count: int) -> dict[str, list[Path]]:
    """``count`` films of each kind under ``out``, made from the shared films in ``data``."""
    rng = np.random.default_rng(0)
    train = data / "chest_xray" / "train"
    jpegs = sorted((train / "NORMAL").glob("*.jpeg"))[:count // 2] + sorted((train / "PNEUMONIA").glob("*.jpeg"))
    jpegs = jpegs[:count]
    fullres = [Image.open(p).convert("L") for p in sorted((data / "fullres").glob("*.png"))[:count]]
    films = {kind: [] for kind in KINDS}
    for path in jpegs:
        films["jpeg224"].append(path)
    for i, grey in enumerate(fullres):
        png = out / f"film{i:02d}.png"
        grey.save(png)
        films["png1024"].append(png)
        films["phone12mp"].append(_phone_photo(grey, out / f"photo{i:02d}.jpeg", rng))
        films["png16"].append(_scan16(grey, out / f"scan{i:02d}.png", rng))
        films["dicom_jpeg"].append(_dicom_jpeg(grey, out / f"film{i:02d}.dcm"))
    return films


def _phone_photo(grey: Image.Image, path: Path, rng) -> Path:
    """A 4000 x 3000 photo of the film on a light box: warm cast, vignette, sensor noise, JPEG q90."""
    film = np.asarray(grey.resize((2250, 2250), Image.BICUBIC), dtype=np.float32)
    frame = np.full((3000, 4000), 40.0, dtype=np.float32)
    frame[375:2625, 875:3125] = film
    ys, xs = np.ogrid[:3000, :4000]
    frame *= 1.0 - 0.25 * (((xs - 2000) / 2000.0) ** 2 + ((ys - 1500) / 1500.0) ** 2)
    rgb = np.stack([frame * 1.0, frame * 0.92, frame * 0.78 + 6], axis=-1)
    rgb += rng.normal(0, 6, rgb.shape).astype(np.float32)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB").save(path, quality=90)
    return path


def _scan16(grey: Image.Image, path: Path, rng) -> Path:
    """A 2500 x 2000 16-bit digitiser scan: 12-bit-ish range, offset, detector noise."""
    film = np.asarray(grey.resize((2500, 2000), Image.BICUBIC), dtype=np.float32)
    values = film * 12 + 3000 + rng.normal(0, 8, film.shape).astype(np.float32)
    Image.fromarray(np.clip(values, 0, 65535).astype(np.uint16)).save(path)
    return path


def _dicom_jpeg(grey: Image.Image, path: Path) -> Path:
    """The film as a JPEG Baseline (8-bit) encapsulated DICOM file, MONOCHROME2."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    buffer = io.BytesIO()
    grey.save(buffer, format="JPEG", quality=95)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CR"
    dataset.Rows, dataset.Columns = grey.height, grey.width
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation = 7, 0
    dataset.PixelData = encapsulate([buffer.getvalue()])
    dataset.save_as(path, enforce_file_format=True)
    return path


# -- the pipelines --------------------------------------------------------------------------------


def float_sibling(model: Path) -> Path:
    """The model's float32 build beside it (``*_int8`` -> ``*_float32``), else the model itself."""
    sibling = model.with_name(model.name.replace("_int8", "_float32"))
    return sibling if sibling != model and sibling.is_file() else model


class Model:
    """One interpreter (1 thread) and the card's input contract, for the peer pipelines."""

    def __init__(self, path: Path, runtime):
        self.interpreter = runtime.interpreter(model_path=str(path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        _, self.height, self.width, self.channels = (int(v) for v in self.input["shape"])
        self.spec = preprocess_spec(read_card(default_model()))

    def run_float(self, pixels: np.ndarray) -> float:
        """Scale 0..255 pixels (H, W[, C]) as the card says, then set, invoke, read."""
        multiplier, offset = SCALINGS[self.spec.scaling]
        return self.run(np.asarray(pixels, dtype=np.float32) * np.float32(multiplier) + np.float32(offset))

    def run(self, tensor: np.ndarray) -> float:
        if tensor.ndim == 2:
            tensor = tensor[..., np.newaxis]
        if tensor.shape[-1] != self.channels:
            tensor = np.repeat(tensor[..., :1], self.channels, axis=-1)
        adapters.set_input(self.interpreter, tensor)
        self.interpreter.invoke()
        return float(adapters.outputs_by_rank(self.interpreter)["probability"].reshape(-1)[0])

    def run_raw(self, pixels: np.ndarray) -> float:
        """The Raspberry Pi example: a quantized model gets the uint8 pixels as they are."""
        if np.issubdtype(self.input["dtype"], np.floating):
            return self.run((np.asarray(pixels, dtype=np.float32) - 127.5) / 127.5)
        if pixels.ndim == 2:
            pixels = pixels[..., np.newaxis]
        self.interpreter.set_tensor(self.input["index"], pixels[np.newaxis].astype(self.input["dtype"]))
        self.interpreter.invoke()
        return float(adapters.outputs_by_rank(self.interpreter)["probability"].reshape(-1)[0])


def pil_open(path: Path) -> Image.Image:
    """How a notebook opens a film: Pillow, or pydicom's pixel array for DICOM."""
    if path.suffix == ".dcm":
        import pydicom

        return Image.fromarray(pydicom.dcmread(path).pixel_array)
    return Image.open(path)


def notebook(model: Model) -> Callable[[Path], float]:
    def run(path: Path) -> float:
        x = np.asarray(pil_open(path).convert("RGB").resize((model.width, model.height)), dtype=np.float32)
        return model.run_float(x[..., :1] if model.channels == 1 else x)
    return run


def tflite_example(model: Model) -> Callable[[Path], float]:
    def run(path: Path) -> float:
        image = pil_open(path).convert("RGB").resize((model.width, model.height))
        return model.run_raw(np.asarray(image.convert("L") if model.channels == 1 else image))
    return run


def dicom_frame(path: Path) -> bytes:
    """The first frame's encoded bytes of an encapsulated DICOM file."""
    import pydicom
    from pydicom.encaps import generate_frames

    dataset = pydicom.dcmread(path)
    return next(generate_frames(dataset.PixelData, number_of_frames=1))


def cv2_grey(data_or_path, side: int, *, jpeg: bool) -> np.ndarray:
    """OpenCV's grey decode: the largest IMREAD_REDUCED_GRAYSCALE_N (JPEG) that keeps both sides >= ``side``."""
    import cv2

    def read(flag):
        if isinstance(data_or_path, bytes):
            return cv2.imdecode(np.frombuffer(data_or_path, np.uint8), flag)
        return cv2.imread(str(data_or_path), flag)

    if not jpeg:
        image = read(cv2.IMREAD_UNCHANGED)
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
        return image
    size = jpeg_size(data_or_path)
    for factor, flag in ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                         (2, cv2.IMREAD_REDUCED_GRAYSCALE_2)):
        if min(size) // factor >= side:
            return read(flag)
    return read(cv2.IMREAD_GRAYSCALE)


def jpeg_size(data_or_path) -> tuple[int, int]:
    import io

    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path
    with Image.open(source) as image:
        return image.size


def to_8_bit(image: np.ndarray) -> np.ndarray:
    """Min-max to uint8 (a 16-bit film), on whatever size it is given."""
    if image.dtype == np.uint8:
        return image
    low, high = int(image.min()), int(image.max())
    return ((image.astype(np.float32) - low) * (255.0 / max(high - low, 1))).astype(np.uint8)


def opencv(model: Model) -> Callable[[Path], float]:
    import cv2

    def run(path: Path) -> float:
        if path.suffix == ".dcm":
            grey = cv2_grey(dicom_frame(path), model.width, jpeg=True)
        else:
            grey = to_8_bit(cv2_grey(path, model.width, jpeg=path.suffix == ".jpeg"))
        small = cv2.resize(grey, (model.width, model.height), interpolation=cv2.INTER_AREA)
        return model.run_float(small)
    return run


#: The product's own timings (``Prediction.timings_ms``) and what each holds.
STAGES = {"decode": "read and decode", "preprocess": "quality gate, resize, input tensor",
          "invoke": "interpreter call and outputs", "scope": "scope check", "total": "total"}


def staged(product: Classifier, kept: list[dict]) -> Callable[[Path], float]:
    """The product's call, keeping each call's own stage timings in ``kept``."""
    def run(path: Path) -> float:
        prediction = product.predict(path)
        kept.append(prediction.timings_ms)
        return prediction.probability
    return run


def pillow_only(product: Classifier) -> Callable[[Path], float]:
    """The product as installed without the ``[fast]`` extra: OpenCV's decode path turned off for the call."""
    fast = opencv_decoders.decode

    def run(path: Path) -> float:
        opencv_decoders.decode = lambda data, image: None
        try:
            return product.predict(path).probability
        finally:
            opencv_decoders.decode = fast
    return run


def decoders(side: int) -> dict[str, Callable[[Path], np.ndarray]]:
    """Every decoder the floor may use: a path to a grey array (8 or 16 bit), at least ``side`` px."""
    import cv2  # noqa: F401  (the floor needs OpenCV's resize anyway)

    def pillow(path: Path) -> np.ndarray:
        if path.suffix == ".dcm":
            import io

            image = Image.open(io.BytesIO(dicom_frame(path)))
        else:
            image = Image.open(path)
        if image.format == "JPEG":
            image.draft("L", (side, side))
        if image.mode not in ("L", "I;16"):
            image = image.convert("L")
        return np.asarray(image)

    def opencv_decode(path: Path) -> np.ndarray:
        if path.suffix == ".dcm":
            return cv2_grey(dicom_frame(path), side, jpeg=True)
        return cv2_grey(path, side, jpeg=path.suffix == ".jpeg")

    return {"pillow": pillow, "opencv": opencv_decode}


def floor(model: Model, decode: Callable[[Path], np.ndarray]) -> Callable[[Path], float]:
    import cv2

    def run(path: Path) -> float:
        small = cv2.resize(decode(path), (model.width, model.height), interpolation=cv2.INTER_AREA)
        return model.run_float(to_8_bit(small))
    return run


def fastest_decoder(films: list[Path], side: int, repeats: int) -> tuple[str, dict]:
    """The decoder with the lowest median time on these films, and every candidate's median ms."""
    medians = {}
    for name, decode in decoders(side).items():
        times = []
        for _ in range(repeats):
            for path in films:
                started = time.perf_counter()
                decode(path)
                times.append((time.perf_counter() - started) * 1000)
        medians[name] = round(float(np.median(times)), 3)
    return min(medians, key=medians.get), medians


# -- the run --------------------------------------------------------------------------------------


def measure(films: dict[str, list[Path]], runs: int, *, model_path: Path) -> dict:
    """Time every pipeline on every kind, taking turns film by film; return the results per kind."""
    runtime = load_runtime()
    product = Classifier(Options(threads=1, allow_out_of_scope=True))  # adult films: timed, scope check included
    product_pillow = Classifier(Options(threads=1, allow_out_of_scope=True))
    float32 = Model(float_sibling(model_path), runtime)
    example, plain, fastest = (Model(model_path, runtime) for _ in range(3))
    side = product.spec.size
    results = {}
    calls, chosen, stages = {}, {}, {}
    for kind, paths in films.items():
        decoder, candidates = fastest_decoder(paths, side, repeats=3)
        chosen[kind] = {"decoder": decoder, "decode_ms_median": candidates}
        calls[kind] = {"product": staged(product, stages.setdefault(kind, [])),
                       "product_pillow": pillow_only(product_pillow), "notebook": notebook(float32),
                       "tflite_example": tflite_example(example), "opencv": opencv(plain),
                       "floor": floor(fastest, decoders(side)[decoder])}
    shuffle = np.random.default_rng(0)
    samples = {kind: {name: [] for name in PIPELINES} for kind in films}
    probabilities = {kind: {name: [] for name in PIPELINES} for kind in films}
    for kind, paths in films.items():  # warm-up: every pipeline once on every film
        for path in paths:
            for name in PIPELINES:
                calls[kind][name](path)
    for round_ in range(runs):
        for kind, paths in films.items():
            path = paths[round_ % len(paths)]
            order = [PIPELINES[i] for i in shuffle.permutation(len(PIPELINES))]
            for name in order:
                started = time.perf_counter()
                probability = calls[kind][name](path)
                samples[kind][name].append((time.perf_counter() - started) * 1000)
                if round_ < len(paths):
                    probabilities[kind][name].append(probability)
    for kind in films:
        stats = {name: summarize(samples[kind][name]) for name in PIPELINES}
        product_p = np.asarray(probabilities[kind]["product"])
        results[kind] = {
            "label": KINDS[kind], "films": len(films[kind]), "floor_decoder": chosen[kind], "ms": stats,
            "product_over_floor": round(stats["product"]["p50"] / stats["floor"]["p50"], 3),
            "product_over_opencv": round(stats["product"]["p50"] / stats["opencv"]["p50"], 3),
            "pillow_only_over_product": round(stats["product_pillow"]["p50"] / stats["product"]["p50"], 3),
            "product_stages_ms_median": {  # the timed calls only: the warm-up's come first
                stage: round(float(np.median([t[stage] for t in stages[kind][-runs:]])), 3) for stage in STAGES},
            "largest_probability_difference_from_product": {
                name: round(float(np.abs(np.asarray(probabilities[kind][name]) - product_p).max()), 4)
                for name in PIPELINES if name != "product"}}
    return {"model": product.id, "model_path": str(product.model_path),
            "notebook_model": str(float_sibling(model_path)),
            "runtime": f"{runtime.name} {runtime.version}", "threads": 1, "kinds": results}


def markdown(result: dict) -> str:
    settings = result["settings"]
    lines = ["# The product against its peers, per kind of film", "",
             f"Measured {result['created']} with:", "", "```", result["command"], "```", "",
             f"Model `{result['model']}` (notebook: `{Path(result['notebook_model']).name}`), "
             f"{result['runtime']}, 1 interpreter thread; {settings['runs']} timed calls per pipeline and "
             "kind, taking turns film by film in a random order, each pipeline with its own interpreter. "
             f"Machine: {result['machine'].get('cpu_model')}, "
             f"{result['machine'].get('cores')} cores. Load average (1, 5, 15 min) before "
             f"{settings['load_average_before']}, after {settings['load_average_after']}.", "",
             "Median ms per film, end to end (path to probability), interquartile range in brackets:", "",
             "| film | product | product, Pillow only | notebook | TFLite example | OpenCV | floor | product / floor "
             "| product / OpenCV |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind in result["kinds"].values():
        cells = [f"{kind['ms'][name]['p50']:.2f} ({kind['ms'][name]['p25']:.2f}-{kind['ms'][name]['p75']:.2f})"
                 for name in PIPELINES]
        lines.append(f"| {kind['label']} | " + " | ".join(cells)
                     + f" | {kind['product_over_floor']:.2f} | {kind['product_over_opencv']:.2f} |")
    lines += ["", "Product, Pillow only: the same classifier with OpenCV's decoders turned off, as installed without "
              "the `[fast]` extra; its time over the product's: "
              + ", ".join(f"{kind['label']} {kind['pillow_only_over_product']:.2f}x"
                          for kind in result["kinds"].values())
              + "."]
    lines += ["", "Where the product's time goes (median ms of its own timings in the same calls; OpenCV's "
              "whole pipeline for comparison: the product's decode and interpreter call alone are about "
              "OpenCV's total, the rest is the checks OpenCV's pipeline does not make):", "",
              "| film | " + " | ".join(STAGES.values()) + " | OpenCV total |",
              "|---|" + "---|" * (len(STAGES) + 1)]
    lines += [f"| {kind['label']} | " + " | ".join(f"{kind['product_stages_ms_median'][stage]:.2f}" for stage in STAGES)
              + f" | {kind['ms']['opencv']['p50']:.2f} |" for kind in result["kinds"].values()]
    lines += ["", "The floor's decoder per kind (median decode-only ms of each candidate, measured first):", ""]
    lines += [f"- {kind['label']}: {kind['floor_decoder']['decoder']} "
              f"({', '.join(f'{k} {v:.2f}' for k, v in kind['floor_decoder']['decode_ms_median'].items())})"
              for kind in result["kinds"].values()]
    lines += ["", "Largest probability difference from the product's, per pipeline, on the films of each kind "
              "(the peers resize and scale differently, so they are not the model's contract):", ""]
    lines += [f"- {kind['label']}: " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                 kind["largest_probability_difference_from_product"].items())
              for kind in result["kinds"].values()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--films", default="../shared/data", help="the shared data folder")
    parser.add_argument("--count", type=int, default=12, help="films of each kind (default 12)")
    parser.add_argument("--runs", type=int, default=60, help="timed calls per pipeline and kind (default 60)")
    parser.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        films = make_films(Path(args.films), Path(tmp), args.count)
        measured = measure(films, args.runs, model_path=default_model())
    keep_run("benchmarks/peers.py", ["--films", args.films, "--count", str(args.count), "--runs", str(args.runs)],
             out=args.out, schema=SCHEMA, runtime=load_runtime(), settings={"runs": args.runs, "count": args.count},
             load_before=load_before, measured=measured, render=markdown)
    return 0


def keep_run(script: str, argv: list[str], *, out: str | None, schema: str, runtime, settings: dict,
             load_before: list[float], measured: dict, render: Callable[[dict], str]) -> None:
    """Print one run's Markdown and, with ``out``, keep OUT.json and OUT.md: the figures with the
    command that made them, the machine and its load before and after (this script and
    heatmap_cost.py)."""
    command = ["python", script, *argv] + (["--out", out] if out else [])
    result = {"schema": schema, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "command": shlex.join(command), "machine": machine_info(runtime),
              "settings": {**settings, "load_average_before": load_before,
                           "load_average_after": [round(x, 2) for x in os.getloadavg()]}, **measured}
    text = render(result)
    print(text)
    if out:
        Path(out + ".json").write_text(json.dumps(result, indent=2) + "\n")
        Path(out + ".md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
