"""The pieces the subcommands share (argtrain.commands.common)."""

import argparse

import pytest

from argtrain.commands.common import add_runtime_args, command_main, start_run


def _parse(argv):
    p = argparse.ArgumentParser(prog="argtrain t")
    p.add_argument("--fail", action="store_true")
    add_runtime_args(p.add_argument_group("run"), seed_help="s", progress_help="p")
    return p.parse_args(argv)


def _run(args):
    if args.fail:
        raise ValueError("bad input")
    return args.seed


def test_command_main_returns_the_status_or_reports(capsys):
    assert command_main("t", ["--seed", "3"], _parse, _run, (ValueError,)) == 3
    seen = []
    assert command_main("t", ["--seed", "3"], _parse, _run, (ValueError,),
                        lambda a, r: seen.append((a.seed, r))) == 0
    assert seen == [(3, 3)]
    assert command_main("t", ["--fail"], _parse, _run, (ValueError,)) == 1
    assert capsys.readouterr().err == "argtrain t: error: bad input\n"
    with pytest.raises(ValueError):  # not one of the expected errors: not swallowed
        command_main("t", ["--fail"], _parse, _run, (OSError,))


def test_runtime_args_and_start_run(tmp_path):
    pytest.importorskip("torch")
    args = _parse(["--device", "cpu", "--no-progress", "--num-threads", "1"])
    assert (args.seed, args.num_threads, args.device, args.no_progress) == (0, 1, "cpu", True)
    args.out = str(tmp_path / "a" / "b")
    device, out, progress = start_run(args)
    assert device.type == "cpu" and out.is_dir() and progress is False
