"""The DRRProjection module's logic: CT node + DRRParameters -> ``medsynth.drr.job`` -> DRR nodes.

``DRRLogic`` is what the module's Logic subclasses, what the web app and batch scripts call, and
what the tests exercise with ``slicer-core``. Rendering is split in three steps so that a GUI
never freezes: ``prepare`` (main thread: reads nodes, checks everything, may raise), ``render``
(any thread: the library's projector, with progress and cancel; touches no node) and ``write``
(main thread: images -> volume nodes on the detector plane). ``process`` chains them for scripts.

Nothing here opens a dialog. A failure raises the library's error and leaves the scene as it
was: new nodes are only added once every image of a request is computed.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from medsynth.drr.job import job_materials, render as render_views, shown_images
from medsynth.drr.parameters import BACKENDS, CArmPose, DRRParameters
from medsynth.drr.poses import sweep_poses
from medsynth.errors import InputError
from medsynth.geometry import CArm
from medsynth.jobs.progress import CancelToken, ProgressCallback, check_cancel, report, sub_progress
from medsynth.module_logic import carm_models
from medsynth.mrml.app import get_scene
from medsynth.mrml.markups import markups_from_points, points_from_markups
from medsynth.mrml.transactions import SceneChanges
from medsynth.mrml.volumes import node_to_volume, volume_to_node
from medsynth.display import display_range
from medsynth.volume import Volume

#: Output kinds the DeepDRR backend can give (it returns one detected-intensity image per pose).
DEEPDRR_OUTPUT_KINDS = ("radiograph", "line_integral")
#: Attributes on a DRR node: the C-arm it was rendered with (JSON), its image kind, preview or not.
DRR_CARM_ATTRIBUTE = "MedSynth.DRR.CArm"
DRR_KIND_ATTRIBUTE = "MedSynth.DRR.Image"
DRR_PREVIEW_ATTRIBUTE = "MedSynth.DRR.Preview"


@dataclass
class DRRView:
    """The images of one pose (name -> single-slice Volume on the detector plane) and its exact C-arm."""

    carm: CArm
    images: dict
    projection: object = None  # the medsynth.drr Projection (area densities, settings)


@dataclass
class PreparedDRR:
    """A checked render job: the CT (and its packed form), the poses, the parameters and where results go."""

    ct: Volume
    prepared: object  # medsynth.drr PreparedVolume
    poses: list
    parameters: DRRParameters
    preview: bool = False
    output_node: object = None
    base_name: str = "DRR"
    sweep_axis: str = ""
    sweep_angles: list = field(default_factory=list)


def is_drr_node(node) -> bool:
    return node is not None and bool(node.GetAttribute(DRR_CARM_ATTRIBUTE))


def looks_like_ct(node) -> bool:
    """A scalar volume (not a label map, not a DRR) whose values look like HU (air near -1000)."""
    if node is None or not node.IsA("vtkMRMLScalarVolumeNode") or node.IsA("vtkMRMLLabelMapVolumeNode"):
        return False
    if is_drr_node(node) or node.GetImageData() is None:
        return False
    modality = node.GetAttribute("DICOM.Modality")
    if modality and modality.upper() != "CT":
        return False
    low, high = node.GetImageData().GetScalarRange()
    return low <= -500 and high > 0


def first_ct_node(scene):
    """The first volume in the scene that looks like a CT (what a module pre-selects), or None."""
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLScalarVolumeNode")
        if looks_like_ct(node):
            return node
    return None


class DRRLogic:
    """CT node + DRRParameters -> DRR volume nodes; C-arm models; aiming; markups; sweeps."""

    def __init__(self, scene=None) -> None:
        self._scene = scene
        self._volume_cache: tuple | None = None
        self._prepared_cache: tuple | None = None

    @property
    def scene(self):
        return self._scene or get_scene()

    @staticmethod
    def warm_up_in_background() -> threading.Thread:
        """Load the projector's kernels (the first time after an install: compile them, tens of seconds)
        in a background thread, so the user's first DRR does not wait. A failure is only logged."""

        def run() -> None:
            from medsynth import drr

            try:
                logging.info("MedSynth DRR kernels ready in %.1f s", drr.warm_up())
            except Exception:  # noqa: BLE001 - a render will say what is wrong
                logging.exception("MedSynth could not prepare the DRR kernels")

        thread = threading.Thread(target=run, name="MedSynth DRR kernels", daemon=True)
        thread.start()
        return thread

    @staticmethod
    def dependencies_ready() -> bool:
        """True when the packages DRRs need beyond Slicer's own (numba) are installed."""
        from medsynth.dependencies import missing_for

        return not missing_for("drr")

    @staticmethod
    def render_key(ct_node, segmentation_node, parameters: DRRParameters) -> tuple:
        """What a live view depends on: a preview is only worth starting when this changes."""
        from medsynth import parameters as params

        def node_key(node):
            if node is None:
                return None
            image = node.GetImageData() if hasattr(node, "GetImageData") else None
            return node.GetID(), image.GetMTime() if image is not None else node.GetMTime()

        return node_key(ct_node), node_key(segmentation_node), repr(params.to_dict(parameters))

    # --- inputs -------------------------------------------------------------------------------
    def ct_volume(self, ct_node) -> Volume:
        """The CT node as a Volume in HU (cached while the node is unchanged, for live previews)."""
        if ct_node is None:
            raise InputError("No CT volume selected. Load a CT (DICOM, NRRD or NIfTI) and select it as the input.")
        if not ct_node.IsA("vtkMRMLScalarVolumeNode") or ct_node.IsA("vtkMRMLLabelMapVolumeNode"):
            raise InputError(f"'{ct_node.GetName()}' is not a scalar volume. Select a CT volume.")
        if is_drr_node(ct_node):
            raise InputError(f"'{ct_node.GetName()}' is a DRR, not a CT. Select the CT it was rendered from.")
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

    def segment_materials(self, segmentation_node, ct: Volume, parameters: DRRParameters):
        """Materials from a segmentation whose segment names are materials; None: DeepDRR's HU thresholds."""
        if segmentation_node is None:
            return job_materials(ct, parameters)
        from medsynth.drr.materials import material
        from medsynth.mrml.segmentations import segment_names, segmentation_to_labelmap

        names = list(dict.fromkeys(segment_names(segmentation_node).values()))
        unknown = []
        for name in names:
            try:
                material(name)
            except InputError:
                unknown.append(name)
        if unknown:
            raise InputError(
                f"Segments {unknown} do not name a material. Rename each segment after its material "
                "(for example 'bone', 'soft tissue', 'air', 'lung', 'fat', 'muscle'), or clear the segmentation "
                "selector to use DeepDRR's HU thresholds."
            )
        labels = segmentation_to_labelmap(segmentation_node, ct)
        mapping = ",".join(f"{name}={name}" for name in names)
        return job_materials(ct, parameters.replace(materials=mapping, physics="deepdrr"), labels)

    def prepared_volume(self, ct_node, parameters: DRRParameters, segmentation_node=None):
        """The CT packed for the projector (densities + materials), cached while nodes are unchanged."""
        from medsynth import drr

        ct = self.ct_volume(ct_node)
        key = (segmentation_node.GetID() if segmentation_node is not None else None,
               segmentation_node.GetMTime() if segmentation_node is not None else 0,
               parameters.physics, parameters.materials)
        cache = self._prepared_cache
        if cache is not None and cache[0] is ct and cache[1] == key:  # the very Volume the CT cache holds
            return ct, cache[2]
        prepared = drr.prepare(ct, self.segment_materials(segmentation_node, ct, parameters))
        self._prepared_cache = (ct, key, prepared)
        return ct, prepared

    # --- rendering: prepare (main thread) -> render (any thread) -> write (main thread) ---------
    def prepare(self, ct_node, parameters: DRRParameters, segmentation_node=None, output_node=None,
                preview: bool = False, poses: Sequence[CArmPose] | None = None) -> PreparedDRR:
        """Read and check everything a render needs (main thread: touches MRML, may raise)."""
        from medsynth import parameters as params

        params.validate(parameters, "DRR parameters")
        ct, prepared = self.prepared_volume(ct_node, parameters, segmentation_node)
        poses = [parameters.pose] if poses is None else list(poses)
        for pose in poses:
            parameters.carm(pose).validate(ct)
        parameters.spectrum()  # fail early on a bad tube voltage or filtration
        parameters.dual_energy_spectra()
        if parameters.backend not in BACKENDS:
            raise InputError(f"Unknown renderer {parameters.backend!r}: use one of {', '.join(BACKENDS)}.")
        if parameters.backend == "deepdrr" and parameters.output_kind not in DEEPDRR_OUTPUT_KINDS:
            raise InputError(
                f"The DeepDRR backend gives {' and '.join(DEEPDRR_OUTPUT_KINDS)} images; for "
                f"{parameters.output_kind!r} use the MedSynth renderer (the same physics, on CPU or CUDA).")
        return PreparedDRR(ct, prepared, poses, parameters, preview, output_node, f"{ct_node.GetName()} DRR")

    def render(self, job: PreparedDRR, progress: ProgressCallback | None = None,
               cancel: CancelToken | None = None) -> list[DRRView]:
        """The images of every pose of a job. Touches no MRML node: safe in a worker thread."""
        if job.parameters.backend == "deepdrr":
            return _render_with_deepdrr(job, progress, cancel)
        projections = render_views(job.prepared, job.parameters, job.poses, preview=job.preview, validate=False,
                                   progress=progress, cancel=cancel)
        return [DRRView(p.carm, shown_images(p, job.parameters), p) for p in projections]

    def write(self, job: PreparedDRR, views: list[DRRView]) -> list:
        """Put a single-pose job's images into volume nodes (main thread); returns the nodes."""
        view = views[0]
        with SceneChanges(self.scene) as changes:
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

    def process(self, ct_node, parameters: DRRParameters, segmentation_node=None, output_node=None,
                preview: bool = False, progress: ProgressCallback | None = None,
                cancel: CancelToken | None = None) -> list:
        """Render one DRR into volume node(s), blocking; returns the output node(s).

        ``output_node`` (optional) receives the first image; a dual-energy pair adds a second node.
        Raises InputError / NotHUError / GeometryError with advice, CancelledError when cancelled;
        the scene is then unchanged.
        """
        report(progress, 0.0, "Reading the CT")
        job = self.prepare(ct_node, parameters, segmentation_node, output_node, preview)
        check_cancel(cancel)
        views = self.render(job, sub_progress(progress, 0.05, 0.95), cancel)
        check_cancel(cancel)
        nodes = self.write(job, views)
        report(progress, 1.0, "DRR ready")
        return nodes

    def update_drr_node(self, node, image: Volume, carm: CArm, kind: str, preview: bool = False):
        """Write an image into a volume node, with its C-arm (for projecting points) and a display range."""
        volume_to_node(image, node=node)
        node.SetAttribute(DRR_CARM_ATTRIBUTE, carm_models.carm_to_json(carm))
        node.SetAttribute(DRR_KIND_ATTRIBUTE, kind)
        node.SetAttribute(DRR_PREVIEW_ATTRIBUTE, "1" if preview else "0")
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
        # radiograph convention: bone bright. I/I0 is dark behind bone, so it is shown inverted.
        colors = "vtkMRMLColorTableNodeInvertedGrey" if kind.endswith("intensity") else "vtkMRMLColorTableNodeGrey"
        if self.scene.GetNodeByID(colors) is not None:
            display.SetAndObserveColorNodeID(colors)
        low, high = display_range(image.array)
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

    @staticmethod
    def set_carm_visible(transform_node, visible: bool) -> None:
        if transform_node is not None:
            for model in carm_models.models_of(transform_node).values():
                model.GetDisplayNode().SetVisibility(visible)

    @staticmethod
    def pose_from_carm(parameters: DRRParameters, carm: CArm) -> DRRParameters:
        """The parameters at a C-arm's pose (angles kept within the sliders' ranges)."""
        pose = CArmPose.of(carm)
        pose.primary_angle = max(-190.0, min(190.0, pose.primary_angle))
        pose.secondary_angle = max(-95.0, min(95.0, pose.secondary_angle))
        return parameters.replace(pose=pose)

    # --- aiming and points --------------------------------------------------------------------
    def aim_at_point(self, pose: CArmPose, markups_node, index: int = 0) -> CArmPose:
        """The pose with its isocenter on a markups control point: the central ray passes through it,
        so the point appears at the detector centre whatever the angles."""
        if markups_node is None or markups_node.GetNumberOfControlPoints() == 0:
            raise InputError("The aim point list is empty. Place a point (Markups) where the C-arm should aim.")
        if not 0 <= index < markups_node.GetNumberOfControlPoints():
            raise InputError(f"The point list has {markups_node.GetNumberOfControlPoints()} points; no point {index + 1}.")
        return pose.moved_to(points_from_markups(markups_node)[index])

    def carm_of_drr(self, drr_node) -> CArm:
        """The C-arm a DRR node was rendered with."""
        if drr_node is None:
            raise InputError("No DRR selected yet: render one (Apply), then project the points onto it.")
        text = drr_node.GetAttribute(DRR_CARM_ATTRIBUTE)
        if not text:
            raise InputError("This volume is not a DRR made by MedSynth (it carries no C-arm). Select a DRR output.")
        return carm_models.carm_from_json(text)

    def project_markups(self, markups_node, drr_node, output_node=None):
        """A point list on the DRR's image plane: each 3D point where the X-rays draw it on the radiograph."""
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
    def prepare_sweep(self, ct_node, parameters: DRRParameters, angles: Sequence[float], axis: str = "primary",
                      segmentation_node=None) -> PreparedDRR:
        """A render job for a sweep of one angle (main thread)."""
        job = self.prepare(ct_node, parameters, segmentation_node, poses=sweep_poses(parameters.pose, axis, angles))
        job.base_name = f"{ct_node.GetName()} DRR {'LAO-RAO' if axis == 'primary' else 'CRAN-CAUD'}"
        job.sweep_axis, job.sweep_angles = axis, [float(a) for a in angles]
        return job

    def write_sweep(self, job: PreparedDRR, views: list[DRRView], as_sequence: bool = True) -> dict:
        """Put a sweep's images into a Sequences node (+ browser) or one volume node per view."""
        from medsynth.module_logic.drr_sweeps import write_sweep

        return write_sweep(self, job, views, as_sequence)

    def sweep(self, ct_node, parameters: DRRParameters, angles: Sequence[float], axis: str = "primary",
              segmentation_node=None, as_sequence: bool = True,
              progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> dict:
        """Render a sweep (blocking); returns {"nodes", "sequence", "sequences", "browser"}.

        With ``as_sequence`` the views go into a Sequences node (index: the angle in degrees) with a
        browser node; otherwise each view is its own volume node. Cancelling leaves the scene unchanged.
        """
        job = self.prepare_sweep(ct_node, parameters, angles, axis, segmentation_node)
        views = self.render(job, sub_progress(progress, 0.0, 0.95), cancel)
        check_cancel(cancel)
        result = self.write_sweep(job, views, as_sequence)
        report(progress, 1.0, f"Sweep of {len(angles)} views ready")
        return result


def _render_with_deepdrr(job: PreparedDRR, progress: ProgressCallback | None,
                         cancel: CancelToken | None) -> list[DRRView]:
    """DeepDRR renders (its own environment, CUDA only); images placed on MedSynth's detector planes."""
    from medsynth.drr import detector_volume
    from medsynth.drr.deepdrr_backend import DeepDRRBackend

    parameters = job.parameters
    if parameters.added_al_mm or parameters.cu_mm:
        raise InputError("The DeepDRR backend uses DeepDRR's own spectra; set the added filtration to 0.")
    carms = [parameters.carm(pose) for pose in job.poses]
    images = DeepDRRBackend().render(job.ct, carms, spectrum=f"{parameters.kv:g}kV",
                                     photons=parameters.photons_or_none(), progress=progress, cancel=cancel)
    views = []
    for carm, image in zip(carms, images):
        if parameters.output_kind == "line_integral":
            pixels, kind = -np.log(np.maximum(image, 1e-12)), "deepdrr_log"
        else:
            pixels, kind = image, "deepdrr_intensity"
        views.append(DRRView(carm, {kind: detector_volume(carm, pixels.astype(np.float32), kind)}))
    return views
