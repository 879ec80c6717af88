"""Compile a pipeline into datatrove pipelines and run them.

The plan, for stages `[r1, r2, G1, G2, r3]` (r: per-record, G: global):

    phase 0   (N tasks) read sources -> r1 -> r2 -> write records + signatures of G1, G2
    barrier 0 (1 task)  G1.decide, then G2.decide on what G1 kept -> decisions per shard
    phase 1   (N tasks) read shard + apply decisions -> r3 -> write data/ and rejects/
    finalize  (1 task)  stats.json, manifest.json, card; the staging folder becomes the version

Consecutive per-record stages fuse into one pass; consecutive global stages share one barrier, and
only their small signatures cross it. Rejected records travel in the stream with their reason and
are written to rejects/ by the phase that sees them, so no step can drop a record silently.

Every phase is a datatrove executor (local, Slurm or Ray) with its own logging folder: datatrove's
completion markers make `--resume` skip finished tasks, and each task rewrites its own output
files atomically, so a resumed run produces exactly the files of an uninterrupted one.

The modules: `plan` (the phases, paths and run key of a pipeline), `steps` (the datatrove steps of
the phases: read, run the per-record stages, write), `barrier` (the global stages decide),
`finalize` (check the accounting, write manifest and card, publish the version), `run` (the run's
lock, the executors and the run loop).
"""
