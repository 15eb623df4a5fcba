"""Score films with a TFLite model, its card and a backend."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from . import adapters
from .backends import get_backend
from .card import model_id, preprocess_spec, read_card
from .errors import BackendUnavailable, ModelError
from .films import Film, Source, read_film
from .preprocess import normalise, resize_to_side, scale_pixels
from .quality import check_contrast, check_shape_and_colour
from .quiet import native_stderr_silenced
from .runtime import load_runtime
from .scope import NOT_CHECKED, Decision, OutOfScope, ScopeCheck, dicom_decision, feature_blocks
from .site import load_site, threshold_source

DEFAULT_MODEL = "pneumo_efficientnet_lite0_int8.tflite"


def input_table(spec, detail: dict) -> np.ndarray:
    """What each grey level 0..255 becomes in the model's input tensor: the scaling and the
    quantization, computed by the very functions that compute them per pixel, on every level once."""
    levels = np.arange(256, dtype=np.uint8)
    return adapters.quantize(scale_pixels(levels, spec)[..., 0], detail)


def shipped_models() -> list[Path]:
    """The .tflite files installed with the package (models/), sorted by name."""
    folder = resources.files("pneumo_edge.models")
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".tflite"))


def resolve_model(given: str | Path | None) -> Path:
    """A model path from a path, or the name of a shipped model (``pneumo_shallow_int8``), or None (the default)."""
    if given is None:
        return default_model()
    shipped = shipped_models()
    path = {p.stem: p for p in shipped}.get(str(given)) or {p.name: p for p in shipped}.get(str(given)) or Path(given)
    if not path.is_file():
        raise ModelError(f"no model {str(given)!r}: give a .tflite path or one of "
                         f"{', '.join(p.stem for p in shipped)}", code="no_model")
    return path


def default_model() -> Path:
    path = Path(str(resources.files("pneumo_edge.models") / DEFAULT_MODEL))
    if not path.exists():
        raise ModelError(f"the default model {DEFAULT_MODEL} is not installed; name one with --model",
                         code="no_model")
    return path


def scope_note(has_scope: bool, allow_out_of_scope: bool) -> str:
    """What the commands say once, at start, about the out-of-scope check."""
    if not has_scope:
        return "none (this model's card has no scope section: films are scored as before, marked unchecked)"
    return "on, scoring and marking refused films (--allow-out-of-scope)" if allow_out_of_scope else "on"


@dataclass
class Options:
    """How to load a model: the TFLite Raspberry Pi example's options, for this package."""

    model: str | Path | None = None  # None: the shipped default
    backend: str = "cpu"
    threads: int | None = None
    device: str | None = None  # Edge TPU device, e.g. "usb:0"
    runtime: str | None = None  # force an interpreter runtime
    fallback: str | None = None  # "cpu": use the CPU when the backend is unavailable
    kernels: str = "default"  # CPU only: "reference" for TFLite's bit-reproducible reference kernels
    quality_gate: bool = True
    site: str | Path | None = None  # a site file from pneumo calibrate: its threshold replaces the card's
    verbose: bool = False  # let the runtime's own messages (the XNNPACK line) reach the terminal
    allow_out_of_scope: bool = False  # score films the scope check refuses, and mark them


@dataclass
class Prediction:
    label: str
    probability: float
    threshold: float
    model: str
    timings_ms: dict = field(default_factory=dict)
    cam: np.ndarray | None = None  # class activation map (h, w) for PNEUMONIA, if the model has one
    film: Film | None = field(default=None, repr=False)  # the decoded film, for heatmap overlays
    threshold_source: str = "model card"  # or "site file PATH" (edge/site.py)
    scope: Decision = NOT_CHECKED

    def as_dict(self) -> dict:
        return {"label": self.label, "probability": round(self.probability, 8),
                "threshold": self.threshold, "threshold_source": self.threshold_source, "model": self.model,
                "scope": self.scope.as_dict(),
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}}


class Classifier:
    """A loaded model: holds the interpreter, so one per process or thread."""

    def __init__(self, options: Options | None = None):
        self.options = options = options or Options()
        started = time.perf_counter()
        self.model_path = resolve_model(options.model)
        self.runtime = load_runtime(options.runtime)
        self.backend = options.backend
        with native_stderr_silenced(not options.verbose):  # TFLite's "Created ... XNNPACK delegate" line
            self.interpreter, self.model_path = self._make_interpreter(options)
            self.interpreter.allocate_tensors()
        self.card = read_card(self.model_path)
        self.spec = preprocess_spec(self.card)
        self.labels = list(self.card["labels"])
        self.site = load_site(options.site, self.card) if options.site else None
        self.threshold = self.site.threshold if self.site else float(self.card["threshold"])
        self.threshold_source = threshold_source(self.site)
        self.id = model_id(self.card)
        self.scope = ScopeCheck(self.card["scope"]) if "scope" in self.card else None
        self._input = self.interpreter.get_input_details()[0]
        self._input_table = input_table(self.spec, self._input)
        # A uint8 input whose quantization undoes the scaling ((x - 127) / 128 at scale 1/128 and
        # zero point 127: the default's) takes the pixels as they are: no lookup to make.
        self._input_is_pixels = self._input_table.dtype == np.uint8 and np.array_equal(
            self._input_table, np.arange(256))
        self._output_plan = adapters.output_plan(self.interpreter.get_output_details())
        self.load_ms = (time.perf_counter() - started) * 1000

    def _make_interpreter(self, options: Options):
        """The backend's interpreter and the model file it runs; the CPU's when allowed to fall back."""
        backend = get_backend(options.backend)
        model_path = backend.model_file(self.model_path)
        try:
            return backend.make_interpreter(model_path, backend.config_from(options), self.runtime), model_path
        except BackendUnavailable:
            if options.fallback != "cpu" or options.backend == "cpu":
                raise
            self.backend = "cpu"
            cpu = get_backend("cpu")
            return cpu.make_interpreter(self.model_path, cpu.config_from(options), self.runtime), self.model_path

    @property
    def has_heatmap(self) -> bool:
        """Whether the model has a class activation map output (the one of rank 4; the scope
        check's feature outputs are vectors)."""
        return any(name == "cam" for _, name, _ in self._output_plan)

    def describe(self) -> dict:
        return {"model": self.id, "model_path": str(self.model_path), "backend": self.backend,
                "runtime": self.runtime.name, "runtime_version": self.runtime.version,
                "threshold": self.threshold, "threshold_source": self.threshold_source,
                "site": self.site.describe() if self.site else None, "labels": self.labels,
                "intended_use": self.card.get("intended_use"), "limitations": self.card.get("limitations", []),
                "name": self.card.get("name"), "variant": self.card.get("variant"),
                "version": self.card.get("version"), "scope_check": self.scope_note()}

    def scope_note(self) -> str:
        """What the commands say once, at start, about the out-of-scope check."""
        return scope_note(self.scope is not None, self.options.allow_out_of_scope)

    def invoke(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        adapters.set_input(self.interpreter, tensor)
        self.interpreter.invoke()
        return adapters.outputs_by_rank(self.interpreter, self._output_plan)

    def input_tensor(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 model-size pixels to the interpreter's input, (1, H, W, C) in its dtype: one table
        lookup (none where the table is the identity), the same values as
        :func:`~.preprocess.scale_pixels` then :func:`~.adapters.quantize`."""
        values = (pixels if self._input_is_pixels else self._input_table[pixels])[np.newaxis, ..., np.newaxis]
        return np.repeat(values, 3, axis=-1) if self.spec.channels == 3 else values

    def predict_film(self, film: Film) -> Prediction:
        """Quality gate, preprocessing, one interpreter call and the scope check on a decoded film.

        Raises :class:`FilmError` for a film the gate refuses and :class:`OutOfScope`
        for one the scope check refuses (unless ``allow_out_of_scope``).
        """
        timings = {}
        t0 = time.perf_counter()
        if self.options.quality_gate:
            check_shape_and_colour(film, self.spec.size)
        early = self.scope and dicom_decision(film.tags, self.scope.adult_age)
        if early and not self.options.allow_out_of_scope:
            raise OutOfScope(early)
        resized = resize_to_side(film.image, self.spec)
        if self.options.quality_gate:
            check_contrast(resized)  # on the model's input, before normalisation: no other copy
        pixels = normalise(resized, self.spec)
        self.interpreter.set_tensor(self._input["index"], self.input_tensor(pixels))
        t1 = time.perf_counter()
        self.interpreter.invoke()
        outputs = adapters.outputs_by_rank(self.interpreter, self._output_plan)
        t2 = time.perf_counter()
        scope = early or (self.scope.decide(feature_blocks(outputs, pixels, self.scope.layout)) if self.scope
                          else NOT_CHECKED)
        t3 = time.perf_counter()
        if not scope.in_scope and not self.options.allow_out_of_scope:
            raise OutOfScope(scope)
        probability = float(outputs["probability"].reshape(-1)[0])
        label = self.labels[1] if probability >= self.threshold else self.labels[0]
        cam = outputs.get("cam")
        timings.update(preprocess=(t1 - t0) * 1000, invoke=(t2 - t1) * 1000, scope=(t3 - t2) * 1000)
        return Prediction(label, probability, self.threshold, self.id, timings,
                          None if cam is None else cam.reshape(cam.shape[1], cam.shape[2]), film,
                          self.threshold_source, scope)

    def read(self, source: Source) -> Film:
        """Decode a film (a path or its bytes) as this model needs it, without the interpreter."""
        return read_film(source, min_size=self.spec.size)

    def predict(self, source: Source) -> Prediction:
        """Read, check and score one film from a path or its bytes."""
        t0 = time.perf_counter()
        film = self.read(source)
        decode_ms = (time.perf_counter() - t0) * 1000
        prediction = self.predict_film(film)
        prediction.timings_ms = {"decode": decode_ms, **prediction.timings_ms,
                                 "total": (time.perf_counter() - t0) * 1000}
        return prediction
