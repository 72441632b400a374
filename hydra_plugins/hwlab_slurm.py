"""The project's SLURM launcher where Hydra looks for launchers (it takes one only from this namespace package), and
its settings as `hydra/launcher=slurm_sweep`, which conf/hydra/launcher/slurm.yaml extends. The code and why:
pipeline/sweeps/slurm.py. Hydra imports this module in every entrypoint: it imports nothing heavy."""

from hydra.core.config_store import ConfigStore

from pipeline.sweeps.slurm import BoundedWaitConf, BoundedWaitLauncher


class SlurmSweepLauncher(BoundedWaitLauncher):
    """Hydra's submitit launcher for SLURM, its wait for the jobs bounded (`lost_after_min`)."""


ConfigStore.instance().store(group="hydra/launcher", name="slurm_sweep", node=BoundedWaitConf)
