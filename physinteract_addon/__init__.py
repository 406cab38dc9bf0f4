"""PhysInteract Blender add-on (placeholder while bootstrapping)."""


def register() -> None:
    pass


def unregister() -> None:
    pass
