"""Sources: where a pipeline's records come from, up to the canonical records the first stage sees.

Each module imports only those listed before it (and `yamlconf`, `resources`, `record`, `batch`):

- `config`: the `sources:` entry of a pipeline (`SourceConfig`).
- `resolve`: a source's files from its path (file, folder, glob, `save_to_disk` folder, bundled
  sample, Hub id); `SourceError` for a source that cannot be read at all.
- `formats`: the chat formats: detecting a row's format, converting it to canonical messages.
- `lines`: the bytes of JSON-lines files (gzip too) as chunks of whole lines and parsed rows.
- `filestate`: what reading one file carries from row to row, and what the columnar path asks of
  the per-row reader.
- `columnar`: the Arrow fast path for chunks of JSON lines in chat formats.
- `reader`: the per-row reader (`SourceReader`), record ids, and the checks `validate` runs.
"""
