"""A DRR sweep's images into the scene: a Sequences node (+ browser), or one volume node per view."""

from __future__ import annotations

from medsynth.mrml.transactions import SceneChanges, remove_node


def write_sweep(logic, job, views: list, as_sequence: bool = True) -> dict:
    """{"nodes", "sequence", "sequences", "browser"} of a rendered sweep (main thread, all or nothing)."""
    result = {"nodes": [], "sequence": None, "sequences": [], "browser": None}
    with SceneChanges(logic.scene) as changes:
        if as_sequence:
            sequences = _write_sequences(logic, job, views, changes)
            browser = changes.add("vtkMRMLSequenceBrowserNode", f"{job.base_name} browser")
            for sequence in sequences.values():
                browser.AddSynchronizedSequenceNodeID(sequence.GetID())
            browser.SetSelectedItemNumber(0)
            _update_proxies(browser)
            result.update(sequence=next(iter(sequences.values())), sequences=list(sequences.values()),
                          browser=browser)
        else:
            for angle, view in zip(job.sweep_angles, views):
                for kind, image in view.images.items():
                    suffix = f"{angle:+g} deg" if len(view.images) == 1 else f"{angle:+g} deg {kind}"
                    node = changes.add("vtkMRMLScalarVolumeNode", f"{job.base_name} {suffix}")
                    node.CreateDefaultDisplayNodes()
                    logic.update_drr_node(node, image, view.carm, kind)
                    result["nodes"].append(node)
    return result


def _write_sequences(logic, job, views: list, changes: SceneChanges) -> dict:
    """One sequence node per image kind, indexed by the sweep angle in degrees."""
    sequences = {}
    for angle, view in zip(job.sweep_angles, views):
        for kind, image in view.images.items():
            sequence = sequences.get(kind)
            if sequence is None:
                name = job.base_name if len(view.images) == 1 else f"{job.base_name} {kind}"
                sequence = changes.add("vtkMRMLSequenceNode", name)
                sequence.SetIndexName(f"{job.sweep_axis} angle")
                sequence.SetIndexUnit("deg")
                sequence.SetIndexType(sequence.NumericIndex)
                sequences[kind] = sequence
            frame = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode")  # copied into the sequence, then removed
            try:
                logic.update_drr_node(frame, image, view.carm, kind)
                sequence.SetDataNodeAtValue(frame, f"{angle:g}")
            finally:
                remove_node(logic.scene, frame)
    return sequences


def _update_proxies(browser) -> None:
    """Make the browser's proxy nodes show the selected frame (Sequences logic, if registered)."""
    try:
        from medsynth.mrml.app import module_logic

        module_logic("Sequences").UpdateProxyNodesFromSequences(browser)
    except Exception:  # noqa: BLE001 - proxies are a display convenience; the sequence itself is complete
        pass
