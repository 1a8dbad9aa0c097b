"""``samia finetune`` on multi-rater data: the Uncertainty-aware Adapter trains with the ELBO, resumes
as an uninterrupted run, writes an adapter file that ``samia evaluate`` samples; deterministic
methods train on the same raters; one-truth data is refused for ``ua_adapter``."""

import pandas as pd
import pytest
import torch
import yaml

from samia.data.rater_phantoms import write_rater_dataset
from samia.errors import ConfigurationError
from samia.finetuning import FinetuneConfig, finetune
from samia.finetuning.rater_loop import RaterTrainer
from samia.models import build_model
from samia.models.ua_adapter import latent_nets

TIMING = ["images_per_s", "seconds", "peak_rss_mb"]


@pytest.fixture(scope="module")
def raters(tmp_path_factory):
    return write_rater_dataset(tmp_path_factory.mktemp("ua") / "data", 6, "rater_folders", seed=5)


def _config(data, out, **overrides):
    values = dict(data=str(data), out=str(out), model="tiny_litemedsam", method="ua_adapter", epochs=2, lr=1e-3,
                  box_jitter_px=2.0, val_samples=3, latent_dim=4, val_fraction=0.34)  # fmt: skip
    values.update(overrides)
    return FinetuneConfig.from_dict(values)


class _Kill(Exception):
    pass


class _KillAt:
    def __init__(self, epoch, step):
        self.at, self.epoch, self.steps = (epoch, step), 0, 0

    def start_epoch(self, epoch, steps):
        self.epoch, self.steps = epoch, 0

    def step(self, loss, rate):
        self.steps += 1
        if (self.epoch, self.steps) == self.at:
            raise _Kill

    def end_epoch(self, record):
        pass


def test_one_step_trains_adapters_prior_posterior_and_decoder_only(raters, tmp_path):
    trainer = RaterTrainer(_config(raters, tmp_path / "run"), None)
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.optimizer.zero_grad()
    import numpy as np

    trainer.step_loss(0, trainer.train_images[0], np.random.default_rng(0)).backward()
    trainer.optimizer.step()
    changed = {k for k, v in trainer.model.named_parameters() if not torch.equal(v, before[k])}
    assert any(k.startswith("latent.posterior.") for k in changed)
    assert any(k.startswith("latent.prior.") for k in changed)  # through the KL term
    assert any(".adapter.up." in k for k in changed) and any(k.startswith("mask_decoder.") for k in changed)
    assert not any(k.startswith("image_encoder.") and ".adapter." not in k for k in changed)
    assert not any(k.startswith("prompt_encoder.") for k in changed)
    rates = {round(group["lr"], 9): len(group["params"]) for group in trainer.optimizer.param_groups}
    latent = sum(1 for k, p in trainer.model.named_parameters() if k.startswith("latent.") and p.requires_grad)
    assert sorted(rates) == [1e-3, 1e-2] and rates[1e-2] == latent  # the latent nets learn 10x faster


def test_a_killed_run_resumes_as_an_uninterrupted_one_and_its_file_samples(raters, tmp_path, cli):
    reference = finetune(_config(raters, tmp_path / "reference", epochs=2))
    config = _config(raters, tmp_path / "killed", epochs=2)
    with pytest.raises(_Kill):
        finetune(config, _KillAt(epoch=2, step=2))
    resumed = finetune(config)
    drop = lambda frame: frame.drop(columns=TIMING)  # noqa: E731
    pd.testing.assert_frame_equal(drop(resumed.history), drop(reference.history))
    final, expected = (torch.load(r.out / "last.pt", weights_only=True)["trainable"] for r in (resumed, reference))
    assert all(torch.equal(final[k], expected[k]) for k in expected)
    history = reference.history
    assert {"val_ged", "val_dice"} <= set(history.columns) and history["val_ged"].notna().all()
    assert reference.best_epoch == int(history.loc[history["val_ged"].idxmin(), "epoch"])
    provenance = yaml.safe_load((reference.out / "finetune.yaml").read_text())["provenance"]
    assert provenance["layout"] == "rater_folders" and len(provenance["raters"]) == 4
    model = build_model("tiny_litemedsam", reference.best_path)
    assert latent_nets(model) is not None and latent_nets(model).blocks == 2
    code, out, err = cli("evaluate", "--data", raters, "--out", tmp_path / "eval", "--model", "tiny_litemedsam",
                         "--checkpoint", reference.best_path, "--samples", "3", "--limit", "2")  # fmt: skip
    assert code == 0, err
    results = pd.read_parquet(tmp_path / "eval" / "raters.parquet")
    assert set(results["sampler"]) == {"latent"} and (results["n_samples"] == 3).all()
    code, _, err = cli("evaluate", "--data", raters, "--out", tmp_path / "eval2", "--model", "tiny_litemedsam",
                       "--checkpoint", reference.best_path, "--sampler", "jitter")  # fmt: skip
    assert code != 0 and "--sampler latent is the one sampler of a model with a ua_adapter" in err


def test_a_deterministic_method_trains_on_the_same_raters(raters, tmp_path):
    outcome = finetune(_config(raters, tmp_path / "adapter", method="adapter", epochs=1))
    assert outcome.history["val_ged"].notna().all() and outcome.history["train_loss"].iloc[1:].notna().all()
    assert latent_nets(build_model("tiny_litemedsam", outcome.best_path)) is None


def test_ua_adapter_needs_several_raters_and_a_known_encoder(phantom_train, raters, tmp_path):
    with pytest.raises(ConfigurationError, match="learns from several raters' masks"):
        finetune(_config(phantom_train, tmp_path / "one_truth"))
    with pytest.raises(ConfigurationError, match="ua_adapter does not apply to tiny_sam2"):
        finetune(_config(raters, tmp_path / "sam2", model="tiny_sam2"))
