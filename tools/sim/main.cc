// p2psp-sim: runs a simulated P2PSP team and prints what happened, or sweeps
// one parameter into a Markdown table (and CSV).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "simulator.h"

namespace {

using p2psp::sim::PeerAction;
using p2psp::sim::SimConfig;
using p2psp::sim::SimParam;
using p2psp::sim::SimResult;

struct Sweep {
  const SimParam* param = nullptr;
  double from = 0, to = 0, step = 1;
};

struct Options {
  SimConfig config;
  Sweep sweep;
  int repeat = 1;
  std::string csv_path;
  bool per_peer = false;
};

void print_help() {
  std::printf(
      "usage: p2psp-sim [--NAME VALUE]... [--sweep NAME=FROM:TO:STEP]\n"
      "                 [--repeat K] [--csv FILE] [--per-peer]\n"
      "                 [--freeze PEER@SECONDS] [--block PEER,PEER]\n\n"
      "Runs the P2PSP splitter and peer cores on a simulated network with a\n"
      "virtual clock. Deterministic for a seed.\n\n"
      "Parameters (any of them can be swept):\n");
  const SimConfig defaults;
  for (const SimParam& p : p2psp::sim::sim_params()) {
    std::printf("  --%-18s %s (default %g)\n", p.name, p.help,
                defaults.*p.field);
  }
  std::printf(
      "\nOther options:\n"
      "  --sweep NAME=A:B:S  run NAME = A, A+S, ... <= B; print a table\n"
      "  --repeat K          K runs per point, seeds seed .. seed+K-1;\n"
      "                      losses are pooled, the rest averaged\n"
      "  --csv FILE          also write the table (or summary) as CSV\n"
      "  --per-peer          print one line per peer after a single run\n"
      "  --freeze P@T        freeze peer P (join order) T s into the stream\n"
      "  --block P,Q         peers P and Q cannot reach each other by UDP\n"
      "  --help              this text\n");
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "p2psp-sim: %s (see --help)\n", message.c_str());
  std::exit(2);
}

double parse_number(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0')
    fail("bad number for " + what + ": " + text);
  return value;
}

Sweep parse_sweep(const std::string& spec) {
  const size_t eq = spec.find('=');
  const size_t c1 = spec.find(':', eq);
  const size_t c2 = c1 == std::string::npos ? c1 : spec.find(':', c1 + 1);
  if (eq == std::string::npos || c2 == std::string::npos) {
    fail("--sweep wants NAME=FROM:TO:STEP, got " + spec);
  }
  Sweep sweep;
  sweep.param = p2psp::sim::find_sim_param(spec.substr(0, eq));
  if (!sweep.param) fail("unknown parameter in --sweep: " + spec.substr(0, eq));
  sweep.from = parse_number(spec.substr(eq + 1, c1 - eq - 1), "--sweep");
  sweep.to = parse_number(spec.substr(c1 + 1, c2 - c1 - 1), "--sweep");
  sweep.step = parse_number(spec.substr(c2 + 1), "--sweep");
  if (sweep.step <= 0) fail("--sweep step must be positive");
  return sweep;
}

void add_pair_option(const std::string& name, const std::string& value,
                     SimConfig* config) {
  if (name == "freeze") {
    const size_t at = value.find('@');
    if (at == std::string::npos) fail("--freeze wants PEER@SECONDS");
    PeerAction action;
    action.kind = PeerAction::Kind::kFreeze;
    action.peer =
        static_cast<uint32_t>(parse_number(value.substr(0, at), "--freeze"));
    action.at_s = parse_number(value.substr(at + 1), "--freeze");
    config->actions.push_back(action);
    return;
  }
  const size_t comma = value.find(',');
  if (comma == std::string::npos) fail("--block wants PEER,PEER");
  config->blocked_pairs.emplace_back(
      static_cast<uint32_t>(parse_number(value.substr(0, comma), "--block")),
      static_cast<uint32_t>(parse_number(value.substr(comma + 1), "--block")));
}

Options parse_args(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_help();
      std::exit(0);
    }
    if (arg == "--per-peer") {
      options.per_peer = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) fail("unexpected argument " + arg);
    std::string name = arg.substr(2);
    std::string value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos && name.rfind("sweep", 0) != 0) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (name.rfind("sweep=", 0) == 0) {
      value = name.substr(6);
      name = "sweep";
    } else {
      if (i + 1 >= argc) fail("--" + name + " needs a value");
      value = argv[++i];
    }
    if (name == "sweep") {
      options.sweep = parse_sweep(value);
    } else if (name == "repeat") {
      options.repeat = static_cast<int>(parse_number(value, "--repeat"));
      if (options.repeat < 1) fail("--repeat must be at least 1");
    } else if (name == "csv") {
      options.csv_path = value;
    } else if (name == "freeze" || name == "block") {
      add_pair_option(name, value, &options.config);
    } else if (const SimParam* p = p2psp::sim::find_sim_param(name)) {
      options.config.*p->field = parse_number(value, "--" + name);
    } else {
      fail("unknown option --" + name);
    }
  }
  return options;
}

// Folds run `r` (the k-th of `repeat`) into `total`, which holds run 0.
void accumulate(const SimResult& r, int repeat, SimResult* total) {
  total->chunks_cut += r.chunks_cut;
  total->chunks_expected += r.chunks_expected;
  total->chunks_played += r.chunks_played;
  total->worst_peer_clr = std::max(total->worst_peer_clr, r.worst_peer_clr);
  total->delay_p50_ms += r.delay_p50_ms / repeat;
  total->delay_p90_ms += r.delay_p90_ms / repeat;
  total->delay_p99_ms += r.delay_p99_ms / repeat;
  total->delay_max_ms = std::max(total->delay_max_ms, r.delay_max_ms);
  total->splitter_upload += r.splitter_upload / repeat;
  total->peer_upload_mean += r.peer_upload_mean / repeat;
  total->peer_upload_max = std::max(total->peer_upload_max, r.peer_upload_max);
  total->joined += r.joined;
  total->left += r.left;
  total->crashed += r.crashed;
  total->frozen += r.frozen;
  total->removed += r.removed;
  total->expelled += r.expelled;
  total->timed_out += r.timed_out;
  total->nacks_sent += r.nacks_sent;
  total->recovered += r.recovered;
  total->retransmits += r.retransmits;
  total->relayed += r.relayed;
  total->udp_sent += r.udp_sent;
  total->udp_lost += r.udp_lost;
  total->udp_queue_drops += r.udp_queue_drops;
  total->events += r.events;
  total->wall_s += r.wall_s;
}

// K runs with consecutive seeds: counts summed (so losses are pooled),
// delays and uploads averaged, worst cases kept. Per-peer lines and the
// trace digest are those of the first run.
SimResult run_repeated(SimConfig config, int repeat) {
  SimResult total = p2psp::sim::run_simulation(config);
  if (repeat == 1) return total;
  for (double* mean :
       {&total.delay_p50_ms, &total.delay_p90_ms, &total.delay_p99_ms,
        &total.splitter_upload, &total.peer_upload_mean}) {
    *mean /= repeat;
  }
  for (int k = 1; k < repeat; ++k) {
    config.seed += 1;
    accumulate(p2psp::sim::run_simulation(config), repeat, &total);
  }
  total.clr = total.chunks_expected == 0
                  ? 0
                  : 1.0 - static_cast<double>(total.chunks_played) /
                              total.chunks_expected;
  return total;
}

struct Row {
  double value;
  SimResult result;
};

const char kHeader[] =
    "clr,worst_peer_clr,delay_p50_ms,delay_p90_ms,delay_p99_ms,delay_max_ms,"
    "splitter_upload,peer_upload_mean,peer_upload_max,removed,queue_drops,"
    "events,wall_s";

std::string csv_fields(const SimResult& r) {
  char line[512];
  std::snprintf(line, sizeof line,
                "%.6f,%.6f,%.1f,%.1f,%.1f,%.1f,%.3f,%.3f,%.3f,%u,%llu,%llu,"
                "%.2f",
                r.clr, r.worst_peer_clr, r.delay_p50_ms, r.delay_p90_ms,
                r.delay_p99_ms, r.delay_max_ms, r.splitter_upload,
                r.peer_upload_mean, r.peer_upload_max, r.removed,
                static_cast<unsigned long long>(r.udp_queue_drops),
                static_cast<unsigned long long>(r.events), r.wall_s);
  return line;
}

void print_table_header(const char* name) {
  std::printf(
      "| %s | CLR | worst peer CLR | delay p50 (ms) | p99 (ms) | max (ms) | "
      "splitter up | peer up mean | peer up max | removed | wall (s) |\n",
      name);
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
}

void print_table_row(const Row& row) {
  const SimResult& r = row.result;
  std::printf(
      "| %g | %.4f | %.4f | %.0f | %.0f | %.0f | %.3f | %.3f | %.3f | %u | "
      "%.1f |\n",
      row.value, r.clr, r.worst_peer_clr, r.delay_p50_ms, r.delay_p99_ms,
      r.delay_max_ms, r.splitter_upload, r.peer_upload_mean, r.peer_upload_max,
      r.removed, r.wall_s);
  // Long sweeps show progress.
  std::fflush(stdout);
}

void write_csv(const std::string& path, const char* name,
               const std::vector<Row>& rows) {
  std::ofstream out(path);
  if (!out) fail("cannot write " + path);
  out << name << "," << kHeader << "\n";
  for (const Row& row : rows) {
    out << row.value << "," << csv_fields(row.result) << "\n";
  }
}

std::string seconds_or_dash(const std::optional<double>& s) {
  if (!s) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", *s);
  return text;
}

void print_per_peer(const SimResult& r) {
  std::printf(
      "# peer id monitor joined_s departed_s removed_s removal "
      "expected played clr upload_bytes uplink_x free_rider queue_drops\n");
  for (const p2psp::sim::PeerResult& p : r.peers) {
    std::printf(
        "%u %u %d %s %s %s %s %llu %llu %.6f %llu %.2f %d %llu\n", p.index,
        p.id, p.monitor ? 1 : 0, seconds_or_dash(p.joined_s).c_str(),
        seconds_or_dash(p.departed_s).c_str(),
        seconds_or_dash(p.removed_s).c_str(),
        p.removal.empty() ? "-" : p.removal.c_str(),
        static_cast<unsigned long long>(p.expected),
        static_cast<unsigned long long>(p.played), p.clr,
        static_cast<unsigned long long>(p.upload_bytes), p.uplink_x,
        p.free_rider ? 1 : 0, static_cast<unsigned long long>(p.queue_drops));
  }
}

int run_sweep(const Options& options) {
  const Sweep& sweep = options.sweep;
  std::vector<Row> rows;
  print_table_header(sweep.param->name);
  // The epsilon keeps the last point despite rounding in the steps.
  for (double v = sweep.from; v <= sweep.to + sweep.step * 1e-9;
       v += sweep.step) {
    SimConfig config = options.config;
    config.*sweep.param->field = v;
    rows.push_back(Row{v, run_repeated(config, options.repeat)});
    print_table_row(rows.back());
  }
  if (!options.csv_path.empty()) {
    write_csv(options.csv_path, sweep.param->name, rows);
  }
  return 0;
}

int run_single(const Options& options) {
  const SimResult r = run_repeated(options.config, options.repeat);
  std::fputs(p2psp::sim::format_summary(options.config, r).c_str(), stdout);
  if (options.per_peer) print_per_peer(r);
  if (!options.csv_path.empty()) {
    write_csv(options.csv_path, "seed", {Row{options.config.seed, r}});
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_args(argc, argv);
  return options.sweep.param ? run_sweep(options) : run_single(options);
}
