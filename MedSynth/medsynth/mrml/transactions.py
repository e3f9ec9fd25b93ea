"""All-or-nothing scene changes: a failed or cancelled operation leaves the user's scene as it was."""

from __future__ import annotations


class SceneChanges:
    """Remember nodes added during an operation; remove them all (with their display nodes) if it fails."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self.added: list = []

    def add(self, class_name: str, name: str):
        node = self.scene.AddNewNodeByClass(class_name, self.scene.GenerateUniqueName(name))
        self.added.append(node)
        return node

    def __enter__(self) -> "SceneChanges":
        return self

    def __exit__(self, exc_type, exc, traceback) -> bool:
        if exc_type is not None:
            for node in reversed(self.added):
                remove_node(self.scene, node)
        return False


def remove_node(scene, node) -> None:
    """Remove a node and its display node, if they are still in the scene."""
    if node is None or node.GetScene() is None:
        return
    display = node.GetDisplayNode() if hasattr(node, "GetDisplayNode") else None
    scene.RemoveNode(node)
    if display is not None and display.GetScene() is not None:
        scene.RemoveNode(display)
