"""A version of a dataset, `<out>/<name>/<version>/`: its layout and files (`layout`), how a run writes and
seals it (`writer`), its card (`facts`, `plots`, `card`), and the commands that look at one or publish it
(`diff`, `inspect`, `hub`). Nothing here imports the stages: what a version says about them is in its files."""
