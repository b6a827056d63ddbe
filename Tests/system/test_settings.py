"""Configuration keys are declared once (Configuration.settings): README's table, `serve --help`
and the shipped config file agree with what `lstm-serve settings --json` prints of them."""
import json
import os
import re
import subprocess

from live import BINARY, ROOT


def settings():
    out = subprocess.run([BINARY, "settings", "--json"], capture_output=True, text=True, check=True).stdout
    return {s["key"]: s for s in json.loads(out)}


def readme_rows():
    """key -> (flag, env, default) from README's configuration table; a row of two keys
    (`tls_cert, tls_key`) gives each its own."""
    text = open(os.path.join(ROOT, "README.md")).read()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or cells[0] in ("key", "---"):
            continue
        keys, flags, envs = (re.findall(r"[\w-]+", re.sub(r"\(.*?\)", "", c).replace("`", "")) for c in cells[:3])
        default = cells[3].replace("`", "")
        default = "" if default in ("—", '""') else default
        for k, f, e in zip(keys, flags, envs):
            rows[k] = ("--" + f.lstrip("-"), e, default)
    return rows


def test_readme_lists_every_key_as_declared():
    declared, rows = settings(), readme_rows()
    assert sorted(rows) == sorted(declared)
    for key, (flag, env, default) in rows.items():
        s = declared[key]
        assert (flag, env) == (s["flag"], s["env"]), key
        assert default == s["default"] or float(default) == float(s["default"]), (key, default, s["default"])


def test_serve_takes_every_key_as_a_flag():
    text = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True, check=True).stdout
    for s in settings().values():
        assert s["flag"] in text and s["env"] in text, s["key"]


def test_the_shipped_config_file_holds_every_key():
    shipped = json.load(open(os.path.join(ROOT, "config", "lstm-serve.json")))
    assert sorted(k for k in shipped if not k.startswith("$")) == sorted(settings())
