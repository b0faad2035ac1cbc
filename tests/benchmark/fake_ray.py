"""A stand-in for the ``ray`` module, for the runner's handling of a cluster that goes away."""

from __future__ import annotations

from importlib.machinery import ModuleSpec


class LostCluster:
    """A stand-in for the ``ray`` module whose cluster goes away after ``lost_after`` tasks
    finished (None: never).

    Tasks run here when their result is fetched; the next ``ray.wait`` raises the
    ``ConnectionError`` Ray's client raises once the head node is gone.
    """

    def __init__(self, lost_after: int | None) -> None:
        self.waits, self.lost_after = 0, lost_after
        self.__spec__ = ModuleSpec("ray", None)  # importlib.util.find_spec("ray") finds it

    def is_initialized(self) -> bool:
        return True  # connected already: the runner neither connects nor shuts Ray down

    def nodes(self) -> list[dict]:
        return [{"Alive": True, "Resources": {"CPU": 2.0}}]

    def cluster_resources(self) -> dict:
        return {"CPU": 2.0}

    def get_runtime_context(self):
        return type("Context", (), {"get_node_id": staticmethod(lambda: "node-1")})

    def remote(self, **_options):
        return lambda function: Remote(function)

    def wait(self, references, num_returns, timeout):
        self.waits += 1
        if self.lost_after is not None and self.waits > self.lost_after:
            raise ConnectionError("GCS has been disconnected for 55 s")
        return references[:num_returns], references[num_returns:]

    def get(self, reference):
        return reference.function(*reference.call)


class Remote:
    """``ray.remote(function)``: ``.remote(*call)`` returns a reference to the call."""

    def __init__(self, function) -> None:
        self.function = function

    def remote(self, *call):
        reference = Remote(self.function)
        reference.call = call
        return reference
