#!/usr/bin/env python3
"""Writes docs/configuration.md from `tapio-agent --helpfull`: every flag the agent defines, its
default and its help text, so the reference cannot drift from the code. A test (config_doc_drift)
fails when the committed page differs from a fresh render.

  scripts/gen-config-doc.py build/agent/tapio-agent > docs/configuration.md
"""
import re
import subprocess
import sys

out = subprocess.run([sys.argv[1], "--helpfull"], capture_output=True, text=True).stdout
lines = out.splitlines()
start = next(i for i, l in enumerate(lines) if re.search(r"Flags from .*agent/main\.cc:", l))
body = []
for l in lines[start + 1:]:
    if re.match(r"\s*Flags from ", l):
        break
    body.append(l.strip())
text = " ".join(body)
flags = re.findall(r"--(\w+) \((.*?)\); default: (.*?);(?= --|\s*$)", text)
print("# Configuration reference: tapio-agent flags\n")
print("Generated from `tapio-agent --helpfull` by `scripts/gen-config-doc.py`; a test fails when")
print("this page and the binary disagree. Flags take `--name=value`; booleans also `--name` /")
print("`--noname`. Bad values are refused at start-up with a message naming the flag (exit 2).\n")
print("| flag | default | meaning |")
print("|---|---|---|")
for name, help_text, default in sorted(flags):
    help_text = help_text.replace("|", "\\|")
    print(f"| `--{name}` | `{default}` | {help_text} |")
