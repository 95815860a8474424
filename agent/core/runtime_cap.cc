#include "agent/core/runtime_cap.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tapio {
namespace {

constexpr uint64_t kKiB = uint64_t{1} << 10;
constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kTiB = uint64_t{1} << 40;

// HotSpot's defaults (gc/shared/gc_globals.hpp, JDK 17). MaxHeapSize is ScaleForWordSize(96 * M):
// align_down(96 MiB * 13 / 10, HeapWordSize) on a 64-bit VM, 130862280 bytes.
constexpr uint64_t kJvmDefaultMaxHeapBytes = (96 * kMiB * 13 / 10) / 8 * 8;
constexpr uint64_t kJvmDefaultMaxRamBytes = 128 * kGiB;  // MaxRAM
constexpr double kJvmDefaultMaxRamPercentage = 25;
constexpr double kJvmDefaultMinRamPercentage = 50;
// os::is_server_class_machine (runtime/os.cpp): 2 GiB less 256 MiB "missing memory".
constexpr uint64_t kJvmServerClassBytes = 2 * kGiB - 256 * kMiB;
// The card table's alignment, 512-byte cards x 4 KiB pages
// (CardTable::ct_max_alignment_constraint); also ZGC's granule.
constexpr uint64_t kJvmCardTableAlignmentBytes = 2 * kMiB;
// G1 (gc/g1/heapRegionBounds.hpp): regions of 1 to 32 MiB, the heap aimed at 2048 of them.
constexpr uint64_t kG1MinRegionBytes = 1 * kMiB;
constexpr uint64_t kG1MaxRegionBytes = 32 * kMiB;
constexpr uint64_t kG1TargetRegions = 2048;

constexpr uint64_t kMemcachedDefaultBytes = 64 * kMiB;  // memcached.c: settings.maxbytes

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

absl::string_view AbslView(std::string_view text) { return {text.data(), text.size()}; }

std::string_view Basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// getenv(3) semantics: the first NAME= entry counts.
std::optional<std::string_view> FindEnv(absl::Span<const std::string> environ,
                                        std::string_view name) {
  for (const std::string& entry : environ) {
    const std::string_view view = entry;
    if (view.size() > name.size() && view[name.size()] == '=' && StartsWith(view, name)) {
      return view.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

// An options variable (JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS, _JAVA_OPTIONS, NODE_OPTIONS) split
// into arguments the way HotSpot (Arguments::parse_options_buffer), the launcher (JLI_ParseOpts)
// and Node read them: whitespace separates; a '...' or "..." run is taken literally, without its
// quotes, and may join the characters around it into one argument. An unmatched quote runs to
// the end.
std::vector<std::string> SplitOptionsVariable(std::string_view value) {
  std::vector<std::string> tokens;
  std::string current;
  bool in_token = false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      if (in_token) tokens.push_back(current);
      current.clear();
      in_token = false;
      continue;
    }
    in_token = true;
    if (c == '\'' || c == '"') {
      size_t close = value.find(c, i + 1);
      if (close == std::string_view::npos) close = value.size();
      current.append(value.substr(i + 1, close - i - 1));
      i = close;
      continue;
    }
    current.push_back(c);
  }
  if (in_token) tokens.push_back(current);
  return tokens;
}

std::optional<uint64_t> ParseDigits(std::string_view digits, uint64_t base) {
  if (digits.empty()) return std::nullopt;
  uint64_t n = 0;
  for (const char c : digits) {
    uint64_t digit = 0;
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digit = c - '0';
    } else if (base == 16 && absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      digit = absl::ascii_tolower(static_cast<unsigned char>(c)) - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (n > (std::numeric_limits<uint64_t>::max() - digit) / base) return std::nullopt;
    n = n * base + digit;
  }
  return n;
}

std::optional<uint64_t> Multiply(uint64_t value, uint64_t multiplier) {
  if (multiplier != 0 && value > std::numeric_limits<uint64_t>::max() / multiplier) {
    return std::nullopt;
  }
  return value * multiplier;
}

// HotSpot's atojulong (runtime/arguments.cpp): decimal digits, or hex after 0x, then at most one
// of k/K, m/M, g/G, t/T. No suffix means bytes.
std::optional<uint64_t> ParseJvmSize(std::string_view text) {
  uint64_t multiplier = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 'k':
      case 'K':
        multiplier = kKiB;
        break;
      case 'm':
      case 'M':
        multiplier = kMiB;
        break;
      case 'g':
      case 'G':
        multiplier = kGiB;
        break;
      case 't':
      case 'T':
        multiplier = kTiB;
        break;
      default:
        break;
    }
    if (multiplier != 1) text.remove_suffix(1);
  }
  std::optional<uint64_t> n;
  if (StartsWith(text, "0x") || StartsWith(text, "0X")) {
    n = ParseDigits(text.substr(2), 16);
  } else {
    n = ParseDigits(text, 10);
  }
  if (!n) return std::nullopt;
  return Multiply(*n, multiplier);
}

// A double JVM flag (MaxRAMPercentage...): "75", "75.0"; HotSpot's range is 0 to 100.
std::optional<double> ParsePercentage(std::string_view text) {
  double value = 0;
  if (text.empty() || absl::ascii_isspace(static_cast<unsigned char>(text.front())) ||
      !absl::SimpleAtod(AbslView(text), &value) || !std::isfinite(value) || value < 0 ||
      value > 100) {
    return std::nullopt;
  }
  return value;
}

absl::Status BadValue(std::string_view runtime, std::string_view option, std::string_view what) {
  std::string message(runtime);
  message.append(" option ").append(option).append(": bad ").append(what);
  return absl::InvalidArgumentError(message);
}

// ---------------------------------------------------------------------------------------------
// jvm

// The last occurrence of one JVM flag in HotSpot's order (JAVA_TOOL_OPTIONS, JDK_JAVA_OPTIONS,
// the command line, _JAVA_OPTIONS), with where it came from.
struct JvmSetting {
  std::string option;  // the whole argument, e.g. "-Xmx12q", for error messages
  std::string value;   // the text after the flag's name
  bool from_env = false;
  int position = -1;  // index in that order; -1 = not given
  bool given() const { return position >= 0; }
};

// Only G1 aligns the heap differently from the rest (AlignJvmHeap).
enum class JvmCollector : uint8_t { kErgonomic, kG1, kOther };

struct JvmFlags {
  JvmSetting max_heap;      // -Xmx, -XX:MaxHeapSize=
  JvmSetting initial_heap;  // -Xms, -XX:InitialHeapSize=
  JvmSetting min_heap;      // -XX:MinHeapSize=
  JvmSetting max_ram;       // -XX:MaxRAM=
  JvmSetting max_ram_percentage;
  JvmSetting min_ram_percentage;
  JvmSetting initial_ram_percentage;
  JvmSetting max_ram_fraction;
  JvmSetting min_ram_fraction;
  JvmSetting initial_ram_fraction;
  JvmSetting ergo_heap_size_limit;
  JvmSetting g1_heap_region_size;
  bool use_container_support = true;
  JvmCollector collector = JvmCollector::kErgonomic;
  bool expand_argfiles = true;  // until --disable-@files
  int last_options_file = -1;   // position of the last @argfile or -XX:VMOptionsFile
  int next_position = 0;
};

struct JvmSettingPrefix {
  std::string_view prefix;
  JvmSetting JvmFlags::*setting;
};

// -Xms also sets MinHeapSize; for the maximum only InitialHeapSize matters then
// (Arguments::set_heap_size), so it is recorded as InitialHeapSize alone.
constexpr JvmSettingPrefix kJvmSettingPrefixes[] = {
    {"-Xmx", &JvmFlags::max_heap},
    {"-XX:MaxHeapSize=", &JvmFlags::max_heap},
    {"-Xms", &JvmFlags::initial_heap},
    {"-XX:InitialHeapSize=", &JvmFlags::initial_heap},
    {"-XX:MinHeapSize=", &JvmFlags::min_heap},
    {"-XX:MaxRAM=", &JvmFlags::max_ram},
    {"-XX:MaxRAMPercentage=", &JvmFlags::max_ram_percentage},
    {"-XX:MinRAMPercentage=", &JvmFlags::min_ram_percentage},
    {"-XX:InitialRAMPercentage=", &JvmFlags::initial_ram_percentage},
    {"-XX:MaxRAMFraction=", &JvmFlags::max_ram_fraction},
    {"-XX:MinRAMFraction=", &JvmFlags::min_ram_fraction},
    {"-XX:InitialRAMFraction=", &JvmFlags::initial_ram_fraction},
    {"-XX:ErgoHeapSizeLimit=", &JvmFlags::ergo_heap_size_limit},
    {"-XX:G1HeapRegionSize=", &JvmFlags::g1_heap_region_size},
};

struct JvmCollectorFlag {
  std::string_view flag;
  JvmCollector collector;
};

constexpr JvmCollectorFlag kJvmCollectorFlags[] = {
    {"-XX:+UseSerialGC", JvmCollector::kOther},
    {"-XX:+UseParallelGC", JvmCollector::kOther},
    {"-XX:+UseG1GC", JvmCollector::kG1},
    {"-XX:+UseZGC", JvmCollector::kOther},
    {"-XX:+UseShenandoahGC", JvmCollector::kOther},
    {"-XX:+UseEpsilonGC", JvmCollector::kOther},
};

// Launcher options whose value is the next argument (`java --help`, JDK 17's java.c): that value
// is neither an option nor the main class.
constexpr std::string_view kJvmOptionsWithSeparateValue[] = {
    "-cp",
    "-classpath",
    "--class-path",
    "-p",
    "--module-path",
    "--upgrade-module-path",
    "--add-modules",
    "--limit-modules",
    "--add-reads",
    "--add-exports",
    "--add-opens",
    "--patch-module",
    "--enable-native-access",
    "--source",
};

bool JvmOptionTakesSeparateValue(std::string_view arg) {
  return std::find(std::begin(kJvmOptionsWithSeparateValue), std::end(kJvmOptionsWithSeparateValue),
                   arg) != std::end(kJvmOptionsWithSeparateValue);
}

bool IsJvmArgfile(std::string_view arg, const JvmFlags& flags) {
  // "@@x" is the literal argument "@x" (the launcher's escape), not a file.
  return flags.expand_argfiles && StartsWith(arg, "@") && !StartsWith(arg, "@@");
}

// Records one VM option; options that do not bear on the heap's maximum are ignored.
void ApplyJvmOption(std::string_view arg, bool from_env, JvmFlags* flags) {
  const int position = flags->next_position++;
  for (const JvmSettingPrefix& entry : kJvmSettingPrefixes) {
    if (StartsWith(arg, entry.prefix)) {
      JvmSetting& setting = flags->*entry.setting;
      setting.option = std::string(arg);
      setting.value = std::string(arg.substr(entry.prefix.size()));
      setting.from_env = from_env;
      setting.position = position;
      return;
    }
  }
  if (StartsWith(arg, "-XX:VMOptionsFile=")) {
    flags->last_options_file = position;
  } else if (arg == "-XX:+UseContainerSupport") {
    flags->use_container_support = true;
  } else if (arg == "-XX:-UseContainerSupport") {
    flags->use_container_support = false;
  } else {
    for (const JvmCollectorFlag& entry : kJvmCollectorFlags) {
      if (arg == entry.flag) flags->collector = entry.collector;
    }
  }
}

// A launcher argument at args[*i]: an option whose value is the next argument (skipped with it),
// --disable-@files, or an @argfile. False for anything else (a VM option, the main class).
bool ConsumeLauncherArgument(absl::Span<const std::string> args, size_t* i, JvmFlags* flags) {
  const std::string& arg = args[*i];
  if (JvmOptionTakesSeparateValue(arg)) {
    ++*i;
    return true;
  }
  if (arg == "--disable-@files") {
    flags->expand_argfiles = false;
    return true;
  }
  if (IsJvmArgfile(arg, *flags)) {
    flags->last_options_file = flags->next_position++;
    return true;
  }
  return false;
}

// An options variable. JAVA_TOOL_OPTIONS and _JAVA_OPTIONS hold VM options only; JDK_JAVA_OPTIONS
// (`launcher`) may also hold launcher options and @argfiles, but no main class.
void ScanJvmOptionsVariable(std::string_view value, bool launcher, JvmFlags* flags) {
  const std::vector<std::string> tokens = SplitOptionsVariable(value);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (launcher && ConsumeLauncherArgument(tokens, &i, flags)) continue;
    ApplyJvmOption(tokens[i], /*from_env=*/true, flags);
  }
}

// The command line up to the end of the options: the main class (the first argument that is no
// option), -jar FILE, or -m/--module MODULE. What follows is the application's.
void ScanJvmCommandLine(absl::Span<const std::string> argv, JvmFlags* flags) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (ConsumeLauncherArgument(argv, &i, flags)) continue;
    const std::string& arg = argv[i];
    if (arg.empty() || arg[0] != '-') return;  // the main class (or source file)
    if (arg == "-jar" || arg == "-m" || arg == "--module" || StartsWith(arg, "--module=")) return;
    ApplyJvmOption(arg, /*from_env=*/false, flags);
  }
}

absl::StatusOr<uint64_t> JvmSettingSize(const JvmSetting& setting) {
  std::optional<uint64_t> size = ParseJvmSize(setting.value);
  if (!size) return BadValue("jvm", setting.option, "size");
  return *size;
}

absl::StatusOr<double> JvmSettingPercentage(const JvmSetting& percentage,
                                            const JvmSetting& fraction, double default_value) {
  // Arguments::set_heap_size: the deprecated fraction sets the percentage only when the
  // percentage itself was not given.
  if (percentage.given()) {
    std::optional<double> value = ParsePercentage(percentage.value);
    if (!value) return BadValue("jvm", percentage.option, "percentage");
    return *value;
  }
  if (fraction.given()) {
    std::optional<uint64_t> value = ParseDigits(fraction.value, 10);
    if (!value || *value == 0) return BadValue("jvm", fraction.option, "fraction");
    return 100.0 / static_cast<double>(*value);
  }
  return default_value;
}

// (julong)((phys_mem * percentage) / 100), in HotSpot's double arithmetic.
uint64_t PercentOf(uint64_t bytes, double percentage) {
  const double value = static_cast<double>(bytes) * percentage / 100;
  // 2^64 as a double: anything at or above it does not fit (cannot happen below 100%).
  if (value >= 18446744073709551616.0) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(value);
}

uint64_t RoundUpToPowerOfTwo(uint64_t value) {
  uint64_t power = 1;
  while (power < value && power <= std::numeric_limits<uint64_t>::max() / 2) power <<= 1;
  return power;
}

// os::physical_memory() as HotSpot sees it: with UseContainerSupport the container's limit when
// it is below the host's memory (a cgroup v1 limit at or above it counts as none:
// CgroupV1Subsystem::read_memory_limit_in_bytes), else the host's.
uint64_t JvmOsPhysicalMemory(const JvmFlags& flags, const RuntimeMemory& memory) {
  if (flags.use_container_support && memory.limit_bytes > 0 &&
      (memory.host_bytes == 0 || memory.limit_bytes < memory.host_bytes)) {
    return memory.limit_bytes;
  }
  return memory.host_bytes;
}

// HotSpot aligns MaxHeapSize up to the collector's heap alignment
// (GCArguments::initialize_heap_flags_and_sizes), an explicit -Xmx too: -Xmx301m runs with
// 302 MiB. Serial, Parallel and ZGC align to 2 MiB; G1 to the larger of that and its region size
// (HeapRegion::setup_heap_region_size: the heap over 2048 regions rounded up to a power of two,
// 1 to 32 MiB, or -XX:G1HeapRegionSize), which is above 2 MiB for heaps above 4 GiB. Without a
// collector flag HotSpot picks G1 on a "server class machine" (os::is_server_class_machine: at
// least 2 CPUs and 1792 MiB of physical memory) and Serial otherwise; the CPU count is not known
// here, so 2 or more are assumed: on one CPU a heap above 4 GiB comes out high by less than one
// G1 region (under 0.1%). Shenandoah and Epsilon are aligned like Serial: they align to their own
// sizes, not modelled.
absl::StatusOr<uint64_t> AlignJvmHeap(const JvmFlags& flags, uint64_t heap_bytes,
                                      uint64_t os_physical_bytes) {
  JvmCollector collector = flags.collector;
  if (collector == JvmCollector::kErgonomic) {
    collector =
        os_physical_bytes >= kJvmServerClassBytes ? JvmCollector::kG1 : JvmCollector::kOther;
  }
  uint64_t alignment = kJvmCardTableAlignmentBytes;
  if (collector == JvmCollector::kG1) {
    uint64_t region = std::max(heap_bytes / kG1TargetRegions, kG1MinRegionBytes);
    if (flags.g1_heap_region_size.given()) {
      absl::StatusOr<uint64_t> option = JvmSettingSize(flags.g1_heap_region_size);
      if (!option.ok()) return option.status();
      if (*option != 0) region = *option;
    }
    region = std::clamp(RoundUpToPowerOfTwo(region), kG1MinRegionBytes, kG1MaxRegionBytes);
    alignment = std::max(alignment, region);
  }
  // Within 32 MiB of 2^64 (a size no JVM can reserve) align down rather than wrap.
  if (heap_bytes > std::numeric_limits<uint64_t>::max() - alignment) {
    return heap_bytes / alignment * alignment;
  }
  return (heap_bytes + alignment - 1) / alignment * alignment;
}

absl::StatusOr<RuntimeHeapCap> JvmHeapCap(const JvmFlags& flags, const RuntimeMemory& memory) {
  RuntimeHeapCap cap;
  cap.kind = RuntimeKind::kJvm;
  // An options file (not read: it lives in the container) may set the heap, unless an explicit
  // maximum comes after it.
  if (flags.last_options_file >= 0 && flags.max_heap.position < flags.last_options_file) {
    return cap;
  }
  const uint64_t os_physical_bytes = JvmOsPhysicalMemory(flags, memory);

  if (flags.max_heap.given()) {
    absl::StatusOr<uint64_t> max_heap = JvmSettingSize(flags.max_heap);
    if (!max_heap.ok()) return max_heap.status();
    if (*max_heap == 0) return BadValue("jvm", flags.max_heap.option, "size");
    absl::StatusOr<uint64_t> aligned = AlignJvmHeap(flags, *max_heap, os_physical_bytes);
    if (!aligned.ok()) return aligned.status();
    cap.cap_bytes = *aligned;
    cap.source = flags.max_heap.from_env ? "env" : "flag";
    return cap;
  }

  // Arguments::set_heap_size (JDK 17). Naming any of these flags means "size from the memory I
  // have": MaxRAM's 128 GiB default then no longer caps physical memory (override_coop_limit).
  const bool override_coop_limit =
      flags.max_ram_percentage.given() || flags.max_ram_fraction.given() ||
      flags.min_ram_percentage.given() || flags.min_ram_fraction.given() ||
      flags.initial_ram_percentage.given() || flags.initial_ram_fraction.given() ||
      flags.max_ram.given();
  uint64_t physical_bytes = 0;
  if (flags.max_ram.given()) {
    absl::StatusOr<uint64_t> max_ram = JvmSettingSize(flags.max_ram);
    if (!max_ram.ok()) return max_ram.status();
    physical_bytes = *max_ram;
  } else if (override_coop_limit) {
    physical_bytes = os_physical_bytes;
  } else {
    physical_bytes = std::min(os_physical_bytes, kJvmDefaultMaxRamBytes);
  }
  if (physical_bytes == 0) return cap;  // neither a limit nor the host's memory is known

  absl::StatusOr<double> max_percentage = JvmSettingPercentage(
      flags.max_ram_percentage, flags.max_ram_fraction, kJvmDefaultMaxRamPercentage);
  if (!max_percentage.ok()) return max_percentage.status();
  absl::StatusOr<double> min_percentage = JvmSettingPercentage(
      flags.min_ram_percentage, flags.min_ram_fraction, kJvmDefaultMinRamPercentage);
  if (!min_percentage.ok()) return min_percentage.status();

  uint64_t heap_bytes = PercentOf(physical_bytes, *max_percentage);
  const uint64_t small_heap_bytes = PercentOf(physical_bytes, *min_percentage);
  if (small_heap_bytes < kJvmDefaultMaxHeapBytes) {
    heap_bytes = small_heap_bytes;  // small physical memory: MinRAMPercentage of it
  } else {
    heap_bytes = std::max(heap_bytes, kJvmDefaultMaxHeapBytes);
  }
  if (flags.ergo_heap_size_limit.given()) {
    absl::StatusOr<uint64_t> limit = JvmSettingSize(flags.ergo_heap_size_limit);
    if (!limit.ok()) return limit.status();
    if (*limit != 0) heap_bytes = std::min(heap_bytes, *limit);
  }
  // Not modelled: without the flags above, HotSpot clamps the heap to what compressed oops can
  // address (about 30 GiB; the exact figure depends on the collector), which only a heap sized
  // from 120 GiB or more reaches; nor limit_heap_by_allocatable_memory, which only a finite
  // RLIMIT_AS triggers.
  const JvmSetting& floor = flags.initial_heap.given() ? flags.initial_heap : flags.min_heap;
  if (floor.given()) {
    absl::StatusOr<uint64_t> floor_bytes = JvmSettingSize(floor);
    if (!floor_bytes.ok()) return floor_bytes.status();
    heap_bytes = std::max(heap_bytes, *floor_bytes);
  }
  absl::StatusOr<uint64_t> aligned = AlignJvmHeap(flags, heap_bytes, os_physical_bytes);
  if (!aligned.ok()) return aligned.status();
  cap.cap_bytes = *aligned;
  cap.source = "ergonomics";
  return cap;
}

absl::StatusOr<RuntimeHeapCap> ParseJvm(absl::Span<const std::string> argv,
                                        absl::Span<const std::string> environ,
                                        const RuntimeMemory& memory) {
  JvmFlags flags;
  if (std::optional<std::string_view> value = FindEnv(environ, "JAVA_TOOL_OPTIONS")) {
    ScanJvmOptionsVariable(*value, /*launcher=*/false, &flags);
  }
  if (std::optional<std::string_view> value = FindEnv(environ, "JDK_JAVA_OPTIONS")) {
    ScanJvmOptionsVariable(*value, /*launcher=*/true, &flags);
  }
  ScanJvmCommandLine(argv, &flags);
  if (std::optional<std::string_view> value = FindEnv(environ, "_JAVA_OPTIONS")) {
    ScanJvmOptionsVariable(*value, /*launcher=*/false, &flags);
  }
  return JvmHeapCap(flags, memory);
}

// ---------------------------------------------------------------------------------------------
// node

struct NodeSetting {
  std::string option;  // as given, e.g. "--max-old-space-size=lots" or "--max-old-space-size lots"
  std::string value;
  bool from_env = false;
  bool given = false;
};

// Node's options that take the next argument as their value (when not written --opt=value).
constexpr std::string_view kNodeOptionsWithSeparateValue[] = {
    "-e", "--eval", "-p", "--print", "-r", "--require",
};

// Scans Node options up to the script (the first argument that is no option; "-" is stdin) or
// "--"; the last --max-old-space-size wins.
void ScanNodeOptions(absl::Span<const std::string> args, size_t first, bool from_env,
                     NodeSetting* setting) {
  for (size_t i = first; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--" || arg == "-" || arg.empty() || arg[0] != '-') return;
    const size_t equals = arg.find('=');
    std::string name = arg.substr(0, equals);
    // V8 flags take '-' and '_' alike.
    std::replace(name.begin(), name.end(), '_', '-');
    if (name == "--max-old-space-size") {
      setting->given = true;
      setting->from_env = from_env;
      if (equals != std::string::npos) {
        setting->option = arg;
        setting->value = arg.substr(equals + 1);
      } else if (i + 1 < args.size()) {
        ++i;
        setting->option = arg + " " + args[i];
        setting->value = args[i];
      } else {
        setting->option = arg;
        setting->value.clear();
      }
      continue;
    }
    if (equals == std::string::npos && std::find(std::begin(kNodeOptionsWithSeparateValue),
                                                 std::end(kNodeOptionsWithSeparateValue),
                                                 arg) != std::end(kNodeOptionsWithSeparateValue)) {
      ++i;
    }
  }
}

absl::StatusOr<RuntimeHeapCap> ParseNode(absl::Span<const std::string> argv,
                                         absl::Span<const std::string> environ) {
  NodeSetting setting;
  if (std::optional<std::string_view> value = FindEnv(environ, "NODE_OPTIONS")) {
    const std::vector<std::string> tokens = SplitOptionsVariable(*value);
    ScanNodeOptions(tokens, 0, /*from_env=*/true, &setting);
  }
  ScanNodeOptions(argv, 1, /*from_env=*/false, &setting);
  RuntimeHeapCap cap;
  cap.kind = RuntimeKind::kNode;
  if (!setting.given) return cap;
  // V8 reads the flag as a whole number of MiB; anything else is refused.
  std::optional<uint64_t> mib = ParseDigits(setting.value, 10);
  std::optional<uint64_t> bytes = mib ? Multiply(*mib, kMiB) : std::nullopt;
  if (!bytes) return BadValue("node", setting.option, "size");
  cap.cap_bytes = *bytes;
  cap.source = setting.from_env ? "env" : "flag";
  return cap;
}

// ---------------------------------------------------------------------------------------------
// memcached

// -m's value: MiB, or a number with a k/m/g suffix (newer memcached).
std::optional<uint64_t> ParseMemcachedSize(std::string_view text) {
  uint64_t multiplier = kMiB;
  if (!text.empty()) {
    switch (absl::ascii_tolower(static_cast<unsigned char>(text.back()))) {
      case 'k':
        multiplier = kKiB;
        text.remove_suffix(1);
        break;
      case 'm':
        text.remove_suffix(1);
        break;
      case 'g':
        multiplier = kGiB;
        text.remove_suffix(1);
        break;
      default:
        break;
    }
  }
  std::optional<uint64_t> n = ParseDigits(text, 10);
  if (!n) return std::nullopt;
  return Multiply(*n, multiplier);
}

absl::StatusOr<RuntimeHeapCap> ParseMemcached(absl::Span<const std::string> argv) {
  std::string option;
  std::string value;
  bool given = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--") break;  // getopt: the end of the options
    if (arg == "-m" || arg == "--memory-limit") {
      given = true;
      if (i + 1 < argv.size()) {
        ++i;
        option = arg + " " + argv[i];
        value = argv[i];
      } else {
        option = arg;
        value.clear();
      }
    } else if (StartsWith(arg, "--memory-limit=")) {
      given = true;
      option = arg;
      value = arg.substr(sizeof("--memory-limit=") - 1);
    } else if (StartsWith(arg, "-m") && arg.size() > 2) {
      given = true;
      option = arg;
      value = arg.substr(2);
    }
  }
  RuntimeHeapCap cap;
  cap.kind = RuntimeKind::kMemcached;
  if (!given) {
    cap.cap_bytes = kMemcachedDefaultBytes;
    cap.source = "default";
    return cap;
  }
  std::optional<uint64_t> bytes = ParseMemcachedSize(value);
  if (!bytes) return BadValue("memcached", option, "size");
  cap.cap_bytes = *bytes;
  cap.source = "flag";
  return cap;
}

}  // namespace

std::string_view RuntimeKindName(RuntimeKind kind) {
  switch (kind) {
    case RuntimeKind::kNone:
      return "";
    case RuntimeKind::kJvm:
      return "jvm";
    case RuntimeKind::kNode:
      return "node";
    case RuntimeKind::kMemcached:
      return "memcached";
  }
  return "";
}

RuntimeKind RuntimeKindOf(absl::Span<const std::string> argv) {
  if (argv.empty()) return RuntimeKind::kNone;
  const std::string_view name = Basename(argv[0]);
  if (name == "java") return RuntimeKind::kJvm;
  if (name == "node" || name == "nodejs") return RuntimeKind::kNode;
  if (name == "memcached") return RuntimeKind::kMemcached;
  return RuntimeKind::kNone;
}

absl::StatusOr<RuntimeHeapCap> ParseRuntimeHeapCap(absl::Span<const std::string> argv,
                                                   absl::Span<const std::string> environ,
                                                   const RuntimeMemory& memory) {
  switch (RuntimeKindOf(argv)) {
    case RuntimeKind::kJvm:
      return ParseJvm(argv, environ, memory);
    case RuntimeKind::kNode:
      return ParseNode(argv, environ);
    case RuntimeKind::kMemcached:
      return ParseMemcached(argv);
    case RuntimeKind::kNone:
      break;
  }
  return RuntimeHeapCap{};
}

std::vector<std::string> SplitNulSeparated(std::string_view data) {
  std::vector<std::string> entries;
  size_t start = 0;
  while (start < data.size()) {
    const size_t nul = data.find('\0', start);
    if (nul == std::string_view::npos) {
      entries.emplace_back(data.substr(start));
      break;
    }
    entries.emplace_back(data.substr(start, nul - start));
    start = nul + 1;
  }
  return entries;
}

}  // namespace tapio
