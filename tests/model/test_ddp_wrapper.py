"""MiniDistributedDataParallel: registration, and gradient sync through train_step (2 ranks)."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch.nn.parallel import DistributedDataParallel

from minirunner.model import MiniDistributedDataParallel, MLPClassifier, is_model_wrapper
from minirunner.registry import MODEL_WRAPPERS
from runner_support import run_ranks


def test_registered_names():
    assert MODEL_WRAPPERS.get("MiniDistributedDataParallel") is MiniDistributedDataParallel
    assert MODEL_WRAPPERS.get("MMDistributedDataParallel") is MiniDistributedDataParallel
    assert MODEL_WRAPPERS.get("DistributedDataParallel") is DistributedDataParallel
    assert not is_model_wrapper(MLPClassifier())


# Two ranks train one step on different halves of a batch. With gradient sync, both end with
# the weights of one SGD step on the mean of their gradients (checked against a step written
# by hand on the whole batch); under no_sync each rank steps on its own gradient only.
_SCRIPT = textwrap.dedent(
    """
    import gc
    import sys
    from contextlib import contextmanager, nullcontext

    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    torch.set_num_threads(1)

    from minirunner.model import MiniDistributedDataParallel, MLPClassifier, is_model_wrapper
    from minirunner.registry import MODEL_WRAPPERS


    class SketchOptimWrapper:
        # Plain SGD by hand: constructing a torch optimizer imports torch._dynamo, which
        # costs seconds in each spawned process.
        def __init__(self, params, lr, sync):
            self.params = list(params)
            self.lr = lr
            self.sync = sync
            self.context_models = []

        @contextmanager
        def optim_context(self, model):
            self.context_models.append(model)
            with (nullcontext() if self.sync else model.no_sync()):
                yield

        def update_params(self, loss):
            loss.backward()
            with torch.no_grad():
                for param in self.params:
                    param -= self.lr * param.grad
                    param.grad = None


    def make_data():
        generator = torch.Generator().manual_seed(1)
        return torch.randn(8, 3, generator=generator), torch.tensor([0, 1, 1, 0, 1, 0, 0, 1])


    def expected_weights(rank, world_size, sync):
        torch.manual_seed(0)
        model = MLPClassifier(in_features=3, hidden_dims=(4,), num_classes=2)
        inputs, labels = make_data()
        if not sync:
            inputs, labels = inputs[rank::world_size], labels[rank::world_size]
        F.cross_entropy(model(inputs), labels).backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= 0.1 * param.grad
        return [p.detach().clone() for p in model.parameters()]


    def worker(rank, world_size, store_file):
        dist.init_process_group(
            "gloo", init_method=f"file://{store_file}", rank=rank, world_size=world_size
        )
        for sync in (True, False):
            torch.manual_seed(0)
            model = MLPClassifier(in_features=3, hidden_dims=(4,), num_classes=2)
            ddp = MODEL_WRAPPERS.build(dict(type="MiniDistributedDataParallel", module=model))
            assert isinstance(ddp, MiniDistributedDataParallel) and is_model_wrapper(ddp)
            wrapper = SketchOptimWrapper(ddp.parameters(), 0.1, sync)
            inputs, labels = make_data()
            batch = dict(inputs=inputs[rank::world_size], data_samples=labels[rank::world_size])
            log_vars = ddp.train_step(batch, wrapper)
            assert wrapper.context_models == [ddp], "optim_context must get the DDP wrapper"
            assert set(log_vars) == {"loss"} and not log_vars["loss"].requires_grad
            for got, want in zip(model.parameters(), expected_weights(rank, world_size, sync)):
                assert torch.allclose(got, want, atol=1e-6), (rank, sync, got, want)
            predictions = ddp.val_step(dict(inputs=inputs, data_samples=labels))
            assert len(predictions) == 8 and "pred_score" in predictions[0]
        # Free DDP (it holds the process group) while Python is fully alive: a gloo process
        # group left to the interpreter's last collection can abort the process at exit.
        del ddp, model, wrapper
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


    if __name__ == "__main__":
        worker(int(sys.argv[1]), 2, sys.argv[2])
        print("OK")
    """
)


@pytest.mark.multiprocess
def test_train_step_syncs_gradients_across_two_ranks(tmp_path):
    script = tmp_path / "ddp_train_step.py"
    script.write_text(_SCRIPT)
    outputs = run_ranks(script, [str(tmp_path / "store")], world_size=2, timeout=180)
    assert all("OK" in out for out in outputs)


def test_wrapper_delegates_val_and_test_step_to_the_module():
    calls = []

    class Fake:
        def val_step(self, data):
            calls.append(("val", data))
            return "v"

        def test_step(self, data):
            calls.append(("test", data))
            return "t"

    # Bypass DDP's constructor (it needs a process group); only the delegation is tested.
    wrapper = MiniDistributedDataParallel.__new__(MiniDistributedDataParallel)
    torch.nn.Module.__init__(wrapper)
    object.__setattr__(wrapper, "module", Fake())
    assert wrapper.val_step(1) == "v" and wrapper.test_step(2) == "t"
    assert calls == [("val", 1), ("test", 2)]
