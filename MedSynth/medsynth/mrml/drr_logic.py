"""The MRML side of the DRRProjection module: nodes -> CArm + Volume -> ``drr.project`` -> DRR nodes.

``DRRProjectionMRMLLogic`` is what the module's Logic subclasses, what batch scripts call and what
the tests exercise with ``slicer-core``. It reads the module's parameter node (the
``@parameterNodeWrapper`` layout: plain parameters, ``pose.<field>`` for the C-arm pose pack,
node references), renders with the library's projector, and writes the radiograph into a
single-slice volume node lying on the detector plane with the detector's spacing. It also keeps
the C-arm models and their transform in step with the pose, aims the central ray at a markups
point, projects markups onto a DRR and runs sweeps (one node per view, or a Sequences node).

Nothing here opens a dialog. A failure raises the library's error and leaves the scene as it
was: new nodes are only added once every image of a request is computed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from medsynth.errors import CancelledError, GeometryError, InputError
from medsynth.geometry import CArm, load_preset, preset_names
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress
from medsynth.mrml import carm_models
from medsynth.mrml.app import get_scene
from medsynth.mrml.markups import markups_from_points, points_from_markups
from medsynth.mrml.volumes import node_to_volume, volume_to_node
from medsynth.volume import Volume

#: Output kinds the module offers: name -> (label, Projection images it shows, projector outputs).
OUTPUT_KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "radiograph": ("Radiograph (detected intensity I/I0)", ("intensity",), ("intensity", "log")),
    "line_integral": ("-log line integral", ("log",), ("intensity", "log")),
    "dual_energy": ("Dual-energy pair (-log at 60 and 120 kV)", ("low_log", "high_log"),
                    ("intensity", "log", "dual_energy")),
    "bone": ("Bone only (-log)", ("bone_log",), ("intensity", "log", "materials")),
    "soft_tissue": ("Soft tissue only (-log)", ("soft_tissue_log",), ("intensity", "log", "materials")),
}
#: Tube voltages of the shipped, named spectra.
SPECTRA = ("60kV", "90kV", "120kV")
#: The dual-energy pair's spectra (low, high).
DUAL_ENERGY_SPECTRA = ("60kV", "120kV")
SWEEP_AXES = ("primary", "secondary")
#: Renderers: MedSynth's own projector, or DeepDRR itself in its own environment (medsynth.drr.deepdrr_backend).
BACKENDS = ("medsynth", "deepdrr")
#: Output kinds the DeepDRR backend can give (it returns one detected-intensity image per pose).
DEEPDRR_OUTPUT_KINDS = ("radiograph", "line_integral")

#: Attribute on a DRR node holding the C-arm it was rendered with (JSON).
DRR_CARM_ATTRIBUTE = "MedSynth.DRR.CArm"
DRR_KIND_ATTRIBUTE = "MedSynth.DRR.Image"


# --- the request: what the parameter node holds, without nodes --------------------------------
@dataclass
class DRRRequest:
    """Everything about a DRR except the nodes: pose, preset, detector, X-rays and output kind.

    Field names are the library's; ``PARAMETERS`` maps them to the module's parameter names.
    """

    primary_angle: float = 0.0
    secondary_angle: float = 0.0
    sid: float = 1020.0
    sod: float = 530.0
    isocenter: tuple[float, float, float] = (0.0, 0.0, 0.0)
    preset: str = "mobile"
    detector_rows: int = 384
    detector_columns: int = 384
    pixel_spacing: float = 0.776
    spectrum: str = "90kV"
    filtration: float = 0.0
    photons: int = 10000
    add_noise: bool = False
    output_kind: str = "radiograph"
    preview_factor: int = 4
    patient_position: str = "HFS"
    seed: int | None = 0
    backend: str = "medsynth"

    def replace(self, **changes) -> "DRRRequest":
        return dataclasses.replace(self, **changes)

    def carm(self) -> CArm:
        """The C-arm this request describes (the preset's mechanical ranges, this detector and pose)."""
        if self.output_kind not in OUTPUT_KINDS:
            raise InputError(f"Unknown output {self.output_kind!r}. Choose one of: {', '.join(OUTPUT_KINDS)}.")
        return load_preset(self.preset).replace(
            primary_angle=float(self.primary_angle),
            secondary_angle=float(self.secondary_angle),
            sid=float(self.sid),
            sod=float(self.sod),
            isocenter=tuple(float(v) for v in self.isocenter),
            detector_rows=int(self.detector_rows),
            detector_columns=int(self.detector_columns),
            pixel_spacing=float(self.pixel_spacing),
            patient_position=self.patient_position,
        )

    def with_carm(self, carm: CArm) -> "DRRRequest":
        """This request moved to ``carm``'s pose (angles, distances, isocenter)."""
        return self.replace(
            primary_angle=float(carm.primary_angle),
            secondary_angle=float(carm.secondary_angle),
            sid=float(carm.sid),
            sod=float(carm.sod),
            isocenter=tuple(float(v) for v in carm.isocenter),
        )

    @classmethod
    def from_preset(cls, name: str, detector_pixels: int | None = None, **changes) -> "DRRRequest":
        """A request with a preset's distances and detector (optionally binned to ``detector_pixels`` rows)."""
        carm = load_preset(name)
        rows, columns = carm.detector_rows, carm.detector_columns
        row_spacing = carm.spacing_rc[0]
        if detector_pixels:
            factor = rows / float(detector_pixels)
            rows, columns, row_spacing = int(detector_pixels), max(1, round(columns / factor)), row_spacing * factor
        request = cls(preset=carm.preset or name, sid=carm.sid, sod=carm.sod, detector_rows=rows,
                      detector_columns=columns, pixel_spacing=row_spacing)
        return request.replace(**changes)


# --- parameter node layout (the module's @parameterNodeWrapper writes exactly this) ------------
#: module parameter name -> (request field, type). ``pose.*`` are the C-arm pose pack's members.
PARAMETERS: dict[str, tuple[str, type]] = {
    "pose.primaryAngle": ("primary_angle", float),
    "pose.secondaryAngle": ("secondary_angle", float),
    "pose.sid": ("sid", float),
    "pose.sod": ("sod", float),
    "pose.isocenterR": ("isocenter.0", float),
    "pose.isocenterA": ("isocenter.1", float),
    "pose.isocenterS": ("isocenter.2", float),
    "preset": ("preset", str),
    "detectorRows": ("detector_rows", int),
    "detectorColumns": ("detector_columns", int),
    "pixelSpacing": ("pixel_spacing", float),
    "spectrum": ("spectrum", str),
    "filtration": ("filtration", float),
    "photons": ("photons", int),
    "addNoise": ("add_noise", bool),
    "outputKind": ("output_kind", str),
    "previewFactor": ("preview_factor", int),
    "backend": ("backend", str),
}
#: Parameters that only steer the GUI (kept in the node, not part of a request).
GUI_PARAMETERS: dict[str, tuple[type, object]] = {
    "followAimPoint": (bool, False),
    "showCArm": (bool, True),
    "livePreview": (bool, True),
    "sweepAxis": (str, "primary"),
    "sweepStart": (float, -90.0),
    "sweepStop": (float, 90.0),
    "sweepStep": (float, 30.0),
    "sweepAsSequence": (bool, True),
}
#: Node references of the parameter node.
NODE_REFERENCES = ("ctVolume", "segmentation", "outputVolume", "aimPoint", "pointsToProject")


def _format(value, kind: type) -> str:
    if kind is bool:
        return "True" if value else "False"  # the wrapper's BoolSerializer format
    return str(kind(value))


def _parse(text: str, kind: type, name: str):
    if kind is bool:
        return text == "True"
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"Parameter {name!r} holds {text!r}, which is not a {kind.__name__}.") from None


def write_parameter_node(parameter_node, request: DRRRequest, **nodes) -> None:
    """Store a request (and node references such as ``ctVolume=node``) the way the module does."""
    unknown = set(nodes) - set(NODE_REFERENCES) - set(GUI_PARAMETERS)
    if unknown:
        raise InputError(f"Unknown parameters {sorted(unknown)}; known node references: {', '.join(NODE_REFERENCES)}.")
    was_modifying = parameter_node.StartModify()
    try:
        for name, (attribute, kind) in PARAMETERS.items():
            if attribute.startswith("isocenter."):
                value = request.isocenter[int(attribute.split(".")[1])]
            else:
                value = getattr(request, attribute)
            parameter_node.SetParameter(name, _format(value, kind))
        for name, (kind, default) in GUI_PARAMETERS.items():
            parameter_node.SetParameter(name, _format(nodes.get(name, default), kind))
        for name in NODE_REFERENCES:
            if name in nodes:
                node = nodes[name]
                parameter_node.SetParameter(name, "")
                parameter_node.SetNodeReferenceID(name, node.GetID() if node is not None else None)
    finally:
        parameter_node.EndModify(was_modifying)


def read_parameter_node(parameter_node) -> tuple[DRRRequest, dict]:
    """The request and the referenced nodes stored in a module parameter node."""
    if parameter_node is None:
        raise InputError("No parameter node. Open the DRRProjection module or create one with the logic.")
    values: dict = {}
    isocenter = list(DRRRequest().isocenter)
    for name, (attribute, kind) in PARAMETERS.items():
        if not parameter_node.GetParameter(name):
            continue
        value = _parse(parameter_node.GetParameter(name), kind, name)
        if attribute.startswith("isocenter."):
            isocenter[int(attribute.split(".")[1])] = value
        else:
            values[attribute] = value
    request = DRRRequest(isocenter=tuple(isocenter), **values)
    nodes = {name: parameter_node.GetNodeReference(name) for name in NODE_REFERENCES}
    for name, (kind, default) in GUI_PARAMETERS.items():
        text = parameter_node.GetParameter(name)
        nodes[name] = _parse(text, kind, name) if text else default
    return request, nodes


# --- helpers ----------------------------------------------------------------------------------
class _SceneChanges:
    """Remember nodes added during an operation; remove them all if it fails."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.added: list = []

    def add(self, class_name: str, name: str):
        node = self.scene.AddNewNodeByClass(class_name, self.scene.GenerateUniqueName(name))
        self.added.append(node)
        return node

    def __enter__(self) -> "_SceneChanges":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None:
            for node in reversed(self.added):
                if node.GetScene() is not None:
                    display = node.GetDisplayNode() if hasattr(node, "GetDisplayNode") else None
                    self.scene.RemoveNode(node)
                    if display is not None and display.GetScene() is not None:
                        self.scene.RemoveNode(display)
        return False


def _display_range(array: np.ndarray) -> tuple[float, float]:
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [0.5, 99.5])
    return float(low), float(max(high, low + 1e-6))


@dataclass
class DRRView:
    """The images of one pose (name -> single-slice Volume on the detector plane) and its exact C-arm."""

    carm: CArm
    images: dict
    projection: object = None  # the medsynth.drr Projection (area densities, settings)


@dataclass
class PreparedDRR:
    """A checked render job: the CT (and its packed form), the poses, the request and where results go."""

    ct: Volume
    prepared: object  # medsynth.drr PreparedVolume
    carms: list
    request: DRRRequest
    preview: bool = False
    output_node: object = None
    base_name: str = "DRR"
    sweep_axis: str = ""
    sweep_angles: list = field(default_factory=list)


# --- the logic --------------------------------------------------------------------------------
class DRRProjectionMRMLLogic:
    """Parameter node / nodes -> DRR volume nodes; C-arm models; aiming; markups; sweeps."""

    def __init__(self, scene=None, device: str | None = None) -> None:
        self._scene = scene
        self.device = device
        self._volume_cache: tuple | None = None
        self._prepared_cache: tuple | None = None

    @property
    def scene(self):
        return self._scene or get_scene()

    @staticmethod
    def warm_up_in_background() -> threading.Thread:
        """Load the projector's kernels (on the first use after an install: compile them, tens of
        seconds) in a background thread, so that the user's first DRR does not wait for them.
        A failure is only logged: the render that needs the kernels reports it."""

        def run() -> None:
            from medsynth import drr

            try:
                logging.info("MedSynth DRR kernels ready in %.1f s", drr.warm_up())
            except Exception:  # noqa: BLE001 - a render will say what is wrong
                logging.exception("MedSynth could not prepare the DRR kernels")

        thread = threading.Thread(target=run, name="MedSynth DRR kernels", daemon=True)
        thread.start()
        return thread

    # --- inputs -------------------------------------------------------------------------------
    def ct_volume(self, ct_node) -> Volume:
        """The CT node as a Volume in HU (cached while the node is unchanged, for live previews)."""
        if ct_node is None:
            raise InputError("No CT volume selected. Load a CT (DICOM, NRRD or NIfTI) and select it as the input.")
        if not ct_node.IsA("vtkMRMLScalarVolumeNode") or ct_node.IsA("vtkMRMLLabelMapVolumeNode"):
            raise InputError(f"'{ct_node.GetName()}' is not a scalar volume. Select a CT volume.")
        image = ct_node.GetImageData()
        transform = ct_node.GetParentTransformNode()
        key = (ct_node.GetID(), ct_node.GetMTime(), image.GetMTime() if image is not None else 0,
               transform.GetMTime() if transform is not None else 0)
        if self._volume_cache is not None and self._volume_cache[0] == key:
            return self._volume_cache[1]
        volume = node_to_volume(ct_node)
        if volume.metadata.modality is None:
            volume.metadata.modality = "CT"
        volume.require_hu()
        self._volume_cache = (key, volume)
        return volume

    def materials(self, segmentation_node, ct: Volume):
        """Materials from a segmentation whose segment names are materials; None: DeepDRR's HU thresholds."""
        if segmentation_node is None:
            return None
        from medsynth.drr.materials import LabelMaterials, material
        from medsynth.mrml.segmentations import segment_names, segmentation_to_labelmap

        names = list(dict.fromkeys(segment_names(segmentation_node).values()))
        mapping = {}
        unknown = []
        for name in names:
            try:
                mapping[name] = material(name).name
            except InputError:
                unknown.append(name)
        if unknown:
            raise InputError(
                f"Segments {unknown} do not name a material. Rename each segment after its material "
                "(for example 'bone', 'soft tissue', 'air', 'lung', 'fat', 'muscle'), or clear the segmentation "
                "selector to use DeepDRR's HU thresholds."
            )
        labels = segmentation_to_labelmap(segmentation_node, ct)
        return LabelMaterials(labels, mapping)

    # --- rendering: prepare (main thread) -> render (any thread) -> write (main thread) ---------
    def prepared_volume(self, ct_node, segmentation_node=None):
        """The CT packed for the projector (densities + materials), cached while nodes are unchanged."""
        ct = self.ct_volume(ct_node)
        key = (segmentation_node.GetID() if segmentation_node is not None else None,
               segmentation_node.GetMTime() if segmentation_node is not None else 0)
        cache = self._prepared_cache
        if cache is not None and cache[0] is ct and cache[1] == key:  # the very Volume the CT cache holds
            return ct, cache[2]
        materials = self.materials(segmentation_node, ct)
        prepared = _prepare(ct, materials)
        self._prepared_cache = (ct, key, prepared)
        return ct, prepared

    def prepare(self, ct_node, request: DRRRequest, segmentation_node=None, output_node=None,
                preview: bool = False, carms: Sequence[CArm] | None = None) -> PreparedDRR:
        """Read and check everything a render needs (main thread: touches MRML, may raise)."""
        ct, prepared = self.prepared_volume(ct_node, segmentation_node)
        if carms is None:
            carms = [request.carm()]
        carms = [carm.validate(ct) for carm in carms]
        _spectrum(request)  # fail early on a bad tube voltage or filtration
        if request.backend not in BACKENDS:
            raise InputError(f"Unknown renderer {request.backend!r}: use one of {', '.join(BACKENDS)}.")
        if request.backend == "deepdrr" and request.output_kind not in DEEPDRR_OUTPUT_KINDS:
            raise InputError(
                f"The DeepDRR backend gives {' and '.join(DEEPDRR_OUTPUT_KINDS)} images; for {request.output_kind!r} "
                "use the MedSynth renderer (the same physics, on CPU or CUDA)."
            )
        base = f"{ct_node.GetName()} DRR"
        return PreparedDRR(ct, prepared, list(carms), request, preview, output_node, base)

    def render(self, job: PreparedDRR, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> list[DRRView]:
        """The images of every pose of a job (single-slice Volumes on the detector plane).

        Touches no MRML node, so the module can run it in a worker thread while the GUI stays live.
        A preview job reads the detector out ``preview_factor`` times coarser over the same field of view.
        """
        preview = None
        if job.preview and job.request.preview_factor > 1:
            preview = max(8, round(max(job.carms[0].detector_rows, job.carms[0].detector_columns)
                                   / job.request.preview_factor))
        if job.request.backend == "deepdrr":
            return _render_with_deepdrr(job.ct, job.carms, job.request, progress, cancel)
        return _render_images(job.prepared, job.carms, job.request, self.device, preview, progress, cancel)

    def write(self, job: PreparedDRR, views: list[DRRView]) -> list:
        """Put a single-pose job's images into volume nodes (main thread); returns the nodes."""
        view = views[0]
        with _SceneChanges(self.scene) as changes:
            nodes = []
            for index, (name, image) in enumerate(view.images.items()):
                node = job.output_node if index == 0 and job.output_node is not None else None
                if node is None:
                    node = changes.add("vtkMRMLScalarVolumeNode", job.base_name if len(view.images) == 1
                                       else f"{job.base_name} {name}")
                    node.CreateDefaultDisplayNodes()
                self.update_drr_node(node, image, view.carm, name, job.preview)
                nodes.append(node)
        return nodes

    def process(self, ct_node, request: DRRRequest, segmentation_node=None, output_node=None, preview: bool = False,
                progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list:
        """Render one DRR and put it into volume node(s); returns the output node(s).

        Blocking, no dialogs, the same in Slicer and headless. ``output_node`` (optional) receives
        the first image; a dual-energy pair adds a second node. Raises InputError / NotHUError /
        GeometryError with advice, CancelledError when cancelled; the scene is then unchanged.
        """
        report(progress, 0.0, "Reading the CT")
        job = self.prepare(ct_node, request, segmentation_node, output_node, preview)
        check_cancel(cancel)
        views = self.render(job, sub_progress(progress, 0.05, 0.95), cancel)
        check_cancel(cancel)
        nodes = self.write(job, views)
        report(progress, 1.0, "DRR ready")
        return nodes

    def process_parameter_node(self, parameter_node, preview: bool = False,
                               progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> list:
        """``process`` with everything read from the module's parameter node; stores the output reference."""
        request, nodes = read_parameter_node(parameter_node)
        outputs = self.process(nodes["ctVolume"], request, nodes["segmentation"], nodes["outputVolume"],
                               preview=preview, progress=progress, cancel=cancel)
        if not preview and nodes["outputVolume"] is None:
            parameter_node.SetNodeReferenceID("outputVolume", outputs[0].GetID())
        return outputs

    def update_drr_node(self, node, image: Volume, carm: CArm, kind: str, preview: bool = False):
        """Write an image into a volume node, with its C-arm (for projecting points) and a display range."""
        volume_to_node(image, node=node)
        node.SetAttribute(DRR_CARM_ATTRIBUTE, carm_models.carm_to_json(carm))
        node.SetAttribute(DRR_KIND_ATTRIBUTE, kind)
        node.SetAttribute("MedSynth.DRR.Preview", "1" if preview else "0")
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        # radiograph convention: bone bright. I/I0 is dark behind bone, so it is shown inverted.
        colors = "vtkMRMLColorTableNodeInvertedGrey" if kind.endswith("intensity") else "vtkMRMLColorTableNodeGrey"
        if self.scene.GetNodeByID(colors) is not None:
            display.SetAndObserveColorNodeID(colors)
        low, high = _display_range(image.array)
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(low, high)
        return node

    # --- the C-arm in 3D ----------------------------------------------------------------------
    def show_carm(self, carm: CArm, transform_node=None) -> carm_models.CArmNodes:
        """Create or move the C-arm models (under one transform node that follows the pose)."""
        return carm_models.show_carm(carm, transform_node, self.scene)

    def carm_from_transform(self, transform_node, like: CArm | None = None, snap: bool = True) -> CArm:
        """The pose the (interactively moved) C-arm transform node holds."""
        return carm_models.carm_from_transform(transform_node, like, snap)

    # --- aiming and points --------------------------------------------------------------------
    def aim_at_point(self, request: DRRRequest, markups_node, index: int = 0) -> DRRRequest:
        """The request with its isocenter on a markups control point: the central ray passes through it,
        so the point appears at the detector centre whatever the angles."""
        if markups_node is None or markups_node.GetNumberOfControlPoints() == 0:
            raise InputError("The aim point list is empty. Place a point (Markups) where the C-arm should aim.")
        if not 0 <= index < markups_node.GetNumberOfControlPoints():
            raise InputError(f"The point list has {markups_node.GetNumberOfControlPoints()} points; no point {index + 1}.")
        point = points_from_markups(markups_node)[index]
        return request.replace(isocenter=tuple(float(v) for v in point))

    def carm_of_drr(self, drr_node) -> CArm:
        """The C-arm a DRR node was rendered with."""
        if drr_node is None:
            raise InputError("No DRR selected yet: render one (Apply), then project the points onto it.")
        text = drr_node.GetAttribute(DRR_CARM_ATTRIBUTE)
        if not text:
            raise InputError("This volume is not a DRR made by MedSynth (it carries no C-arm). Select a DRR output.")
        return carm_models.carm_from_json(text)

    def project_markups(self, markups_node, drr_node, output_node=None):
        """A point list on the DRR's image plane: each 3D point where the X-rays draw it on the radiograph.

        The projected points lie on the DRR volume's plane (its slice), at the continuous pixel
        position ``carm.project_points`` gives, so in a 2D view they sit on the structure's shadow.
        """
        if markups_node is None or markups_node.GetNumberOfControlPoints() == 0:
            raise InputError("No points to project. Place points in 3D (Markups) and select them.")
        carm = self.carm_of_drr(drr_node)
        points = points_from_markups(markups_node)
        pixels = carm.project_points(points)  # (N, 2) col, row; raises for points behind the source
        drr = node_to_volume(drr_node)
        on_plane = drr.ijk_to_ras_points(np.column_stack([pixels, np.zeros(len(pixels))]))
        labels = [markups_node.GetNthControlPointLabel(i) for i in range(len(points))]
        name = f"{markups_node.GetName()} on {drr_node.GetName()}"
        node = markups_from_points(on_plane, name=name, node=output_node, labels=labels)
        node.SetAttribute("MedSynth.DRR.PixelsColRow", json.dumps(pixels.tolist()))
        return node

    # --- sweeps -------------------------------------------------------------------------------
    @staticmethod
    def sweep_angles(start: float, stop: float, step: float) -> list[float]:
        """Angles from ``start`` to ``stop`` (included when reached) by ``step``."""
        if not step or step <= 0 or not math.isfinite(step):
            raise InputError(f"The sweep step must be a positive angle, got {step}.")
        if stop < start:
            raise InputError(f"The sweep runs from {start} to {stop}: the last angle must not be below the first.")
        count = int(math.floor((stop - start) / step + 1e-9)) + 1
        if count > 720:
            raise InputError(f"The sweep would render {count} views; use a larger step (at most 720 views).")
        return [float(start + i * step) for i in range(count)]

    def prepare_sweep(self, ct_node, request: DRRRequest, angles: Sequence[float], axis: str = "primary",
                      segmentation_node=None) -> PreparedDRR:
        """A render job for a sweep of one angle (main thread)."""
        if axis not in SWEEP_AXES:
            raise InputError(f"Unknown sweep axis {axis!r}: use 'primary' (LAO/RAO) or 'secondary' (CRAN/CAUD).")
        if len(angles) == 0:
            raise InputError("The sweep has no angles.")
        field_name = "primary_angle" if axis == "primary" else "secondary_angle"
        carms = [request.replace(**{field_name: float(a)}).carm() for a in angles]
        job = self.prepare(ct_node, request, segmentation_node, carms=carms)
        label = "LAO-RAO" if axis == "primary" else "CRAN-CAUD"
        job.base_name = f"{ct_node.GetName()} DRR {label}"
        job.sweep_axis, job.sweep_angles = axis, [float(a) for a in angles]
        return job

    def write_sweep(self, job: PreparedDRR, views: list[DRRView], as_sequence: bool = True) -> dict:
        """Put a sweep's images into a Sequences node (+ browser) or one volume node per view."""
        result = {"nodes": [], "sequence": None, "sequences": [], "browser": None}
        axis, angles = job.sweep_axis, job.sweep_angles
        with _SceneChanges(self.scene) as changes:
            if as_sequence:
                sequences = {}
                for angle, view in zip(angles, views):
                    for kind, image in view.images.items():
                        sequence = sequences.get(kind)
                        if sequence is None:
                            name = job.base_name if len(view.images) == 1 else f"{job.base_name} {kind}"
                            sequence = changes.add("vtkMRMLSequenceNode", name)
                            sequence.SetIndexName(f"{axis} angle")
                            sequence.SetIndexUnit("deg")
                            sequence.SetIndexType(sequence.NumericIndex)
                            sequences[kind] = sequence
                        frame = self.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")  # copied, then removed
                        try:
                            self.update_drr_node(frame, image, view.carm, kind)
                            sequence.SetDataNodeAtValue(frame, f"{angle:g}")
                        finally:
                            display = frame.GetDisplayNode()
                            self.scene.RemoveNode(frame)
                            if display is not None:
                                self.scene.RemoveNode(display)
                browser = changes.add("vtkMRMLSequenceBrowserNode", f"{job.base_name} browser")
                for sequence in sequences.values():
                    browser.AddSynchronizedSequenceNodeID(sequence.GetID())
                browser.SetSelectedItemNumber(0)
                self._update_proxies(browser)
                result.update(sequence=next(iter(sequences.values())), sequences=list(sequences.values()),
                              browser=browser)
            else:
                for angle, view in zip(angles, views):
                    for kind, image in view.images.items():
                        suffix = f"{angle:+g} deg" if len(view.images) == 1 else f"{angle:+g} deg {kind}"
                        node = changes.add("vtkMRMLScalarVolumeNode", f"{job.base_name} {suffix}")
                        node.CreateDefaultDisplayNodes()
                        self.update_drr_node(node, image, view.carm, kind)
                        result["nodes"].append(node)
        return result

    def sweep(self, ct_node, request: DRRRequest, angles: Sequence[float], axis: str = "primary",
              segmentation_node=None, as_sequence: bool = True,
              progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict:
        """Render a sweep of poses (blocking); returns {"nodes", "sequence", "sequences", "browser"}.

        With ``as_sequence`` the views go into a Sequences node (index: the angle in degrees) with a
        browser node; otherwise each view is its own volume node. Cancelling leaves the scene unchanged.
        """
        job = self.prepare_sweep(ct_node, request, angles, axis, segmentation_node)
        views = self.render(job, sub_progress(progress, 0.0, 0.95), cancel)
        check_cancel(cancel)
        result = self.write_sweep(job, views, as_sequence)
        report(progress, 1.0, f"Sweep of {len(angles)} views ready")
        return result

    def _update_proxies(self, browser) -> None:
        """Make the browser's proxy nodes show the selected frame (Sequences logic, if registered)."""
        try:
            from medsynth.mrml.app import module_logic

            module_logic("Sequences").UpdateProxyNodesFromSequences(browser)
        except Exception:  # proxies are a display convenience; the sequence itself is complete
            pass


# --- the projector call -------------------------------------------------------------------------
def _prepare(ct: Volume, materials):
    """The CT packed once for all poses (the projector's PreparedVolume)."""
    from medsynth import drr

    return drr.prepare(ct, materials)


def _render_images(prepared, carms: list[CArm], request: DRRRequest, device: str | None, preview: int | None,
                   progress: ProgressCallback | None, cancel: CancelToken | None) -> list[DRRView]:
    """Call the library's projector once for all poses and pick the request's images."""
    from medsynth import drr

    _label, kinds, outputs = OUTPUT_KINDS[request.output_kind]
    photons = int(request.photons) if request.add_noise else None
    projections = drr.project(prepared, carms, spectrum=_spectrum(request), photons=photons, outputs=outputs,
                              dual_energy=DUAL_ENERGY_SPECTRA, seed=request.seed, device=device or "auto",
                              preview=preview, progress=progress, cancel=cancel)
    views = []
    for projection in projections:
        missing = [kind for kind in kinds if kind not in projection.images]
        if missing:
            raise InputError(
                f"This projection has no {', '.join(missing)} image: its materials are "
                f"{', '.join(projection.material_names)}. Use materials that include it (HU thresholds give air, "
                "soft tissue and bone)."
            )
        views.append(DRRView(projection.carm, {kind: projection.as_volume(kind) for kind in kinds}, projection))
    return views


def _render_with_deepdrr(ct: Volume, carms: list[CArm], request: DRRRequest, progress: ProgressCallback | None,
                         cancel: CancelToken | None) -> list[DRRView]:
    """DeepDRR renders (its own environment, CUDA only); images placed on MedSynth's detector planes."""
    from medsynth.drr import detector_volume
    from medsynth.drr.deepdrr_backend import DeepDRRBackend

    if request.filtration:
        raise InputError("The DeepDRR backend uses DeepDRR's own spectra; set the added filtration to 0.")
    photons = int(request.photons) if request.add_noise else None
    images = DeepDRRBackend().render(ct, carms, spectrum=request.spectrum, photons=photons, progress=progress,
                                     cancel=cancel)
    views = []
    for carm, image in zip(carms, images):
        if request.output_kind == "line_integral":
            pixels, kind = -np.log(np.maximum(image, 1e-12)), "deepdrr_log"
        else:
            pixels, kind = image, "deepdrr_intensity"
        views.append(DRRView(carm, {kind: detector_volume(carm, pixels.astype(np.float32), kind)}))
    return views


def _spectrum(request: DRRRequest):
    from medsynth.drr.spectra import spectrum

    if request.spectrum not in SPECTRA and not request.spectrum.lower().endswith(("kv", "kvp")):
        raise InputError(f"Unknown tube voltage {request.spectrum!r}. Choose one of: {', '.join(SPECTRA)}.")
    if request.filtration < 0:
        raise InputError(f"Added filtration must be zero or more mm Al, got {request.filtration}.")
    if request.filtration:
        from medsynth.drr.spectra import default_al_mm

        kvp = float(request.spectrum.lower().rstrip("kvp").rstrip("kv"))
        return spectrum(kvp, al_mm=default_al_mm(kvp) + float(request.filtration))
    return spectrum(request.spectrum)

