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


class BadNode(LostCluster):
    """A stand-in ``ray`` with two nodes: tasks on ``bad`` run other rlrobot code (their trials
    fail before running), tasks on ``good`` run; unpinned tasks alternate between them."""

    def __init__(self) -> None:
        super().__init__(lost_after=None)
        self.submitted, self.current, self.ran_on = 0, "good", []

    def nodes(self) -> list[dict]:
        return [
            {"NodeID": node, "Alive": True, "Resources": {"CPU": 1.0}} for node in ("bad", "good")
        ]

    def get_runtime_context(self):
        return type("Context", (), {"get_node_id": staticmethod(lambda: self.current)})

    def remote(self, **_options):
        return lambda function: Placed(self, function, None)

    def get(self, reference):
        self.current = reference.node
        self.ran_on.append(reference.node)
        spec, expected = reference.call
        return reference.function(spec, "0123456789ab" if reference.node == "bad" else expected)


class Placed:
    """``ray.remote(function)``, optionally ``.options(scheduling_strategy=…)``-pinned."""

    def __init__(self, ray: BadNode, function, node: str | None) -> None:
        self.ray, self.function, self.node = ray, function, node

    def options(self, scheduling_strategy):
        return Placed(self.ray, self.function, scheduling_strategy.node_id)

    def remote(self, *call):
        node = self.node or ("bad", "good")[self.ray.submitted % 2]
        self.ray.submitted += 1
        reference = Placed(self.ray, self.function, node)
        reference.call = call
        return reference


class NodeAffinitySchedulingStrategy:
    """``ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy``."""

    def __init__(self, node_id: str, soft: bool) -> None:
        self.node_id, self.soft = node_id, soft
