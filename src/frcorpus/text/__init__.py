"""Pure text helpers shared by stages and the tools around them: no stage state, no stage imports.

- `views`: the turns a view of a conversation looks at (prompt, response, conversation);
- `code`: fenced code blocks in markdown, and code written without a fence;
- `prose`: the prose of a turn (code, formulas, links, numbers and quotes set aside), its head,
  one-line form and sentences;
- `languages`: ISO codes of language-id labels, requests for a translation;
- `language_requests`: the languages a prompt asks its answer to be in (« réponds en anglais »).
"""
