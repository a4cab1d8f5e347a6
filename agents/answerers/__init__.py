"""Answering heads: ``memory`` (offline, default), ``hf`` (local transformers VLM) and
``openai`` (any OpenAI-compatible chat endpoint). ``make_answerer`` imports only the chosen one."""
