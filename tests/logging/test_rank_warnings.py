"""Python warnings on ranks other than 0 go to that rank's file, not to the console."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_warnings_go_to_the_file_and_not_to_stderr(tmp_path):
    path = tmp_path / "logs" / "run_rank1_warnings.log"
    script = textwrap.dedent(
        f"""
        import warnings
        from minirunner.logging import send_warnings_to_file
        send_warnings_to_file({str(tmp_path / 'first.log')!r})
        send_warnings_to_file({str(path)!r})  # a second run in the same process moves them
        for _ in range(3):
            warnings.warn('a library complains', UserWarning)  # one place: shown once
        warnings.warn('another one', DeprecationWarning, stacklevel=1)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "complains" not in done.stderr and "another one" not in done.stderr
    text = path.read_text()
    assert text.count("UserWarning: a library complains") == 1
    assert "DeprecationWarning: another one" in text
    assert not (tmp_path / "first.log").exists()  # created only with a first warning


def test_without_a_warning_no_file_is_made(tmp_path):
    script = (
        "from minirunner.logging import send_warnings_to_file;"
        f"send_warnings_to_file({str(tmp_path / 'logs' / 'w.log')!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert not (tmp_path / "logs").exists()
