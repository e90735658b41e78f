// Writes data/text/unicode_normalization_inert.inc and tests/assets/unicode_normalization_expected.jsonl.
//
// distillery normalizes with utf8proc (Unicode 15). The reference normalizes with the Rust crate
// unicode-normalization-alignments, whose tables are older: it treats code points assigned
// since then as unassigned - combining class 0, no decomposition, composing with nothing. This
// tool finds the code points where that makes a difference, by comparing utf8proc with the
// reference on probe strings (each decomposable or combining code point alone, next to marks of
// class 1 and 240, and every canonical decomposition), and checks that treating exactly those
// code points as inert reproduces the reference on every probe.
//
//   g++ -O2 -std=c++17 tests/parity/gen_unicode_normalization.cpp -lutf8proc -o /tmp/gen_norm
//   /tmp/gen_norm probes > /tmp/probes.txt
//   node tests/parity/unicode_normalization_reference.js /tmp/probes.txt > /tmp/reference.jsonl
//   /tmp/gen_norm compare /tmp/probes.txt /tmp/reference.jsonl data/text/unicode_normalization_inert.inc \
//       tests/assets/unicode_normalization_expected.jsonl
#include <utf8proc.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Cps = std::vector<int32_t>;
const char* const kForms[4] = {"NFC", "NFD", "NFKC", "NFKD"};
const int kOptions[4] = {UTF8PROC_STABLE | UTF8PROC_COMPOSE, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE,
                         UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT,
                         UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT};

std::string encode(const Cps& cps) {
  std::string s;
  for (int32_t cp : cps) {
    utf8proc_uint8_t buf[4];
    const auto n = utf8proc_encode_char(cp, buf);
    s.append(reinterpret_cast<char*>(buf), n);
  }
  return s;
}

Cps decode(const std::string& s) {
  Cps out;
  utf8proc_ssize_t p = 0;
  while (p < static_cast<utf8proc_ssize_t>(s.size())) {
    utf8proc_int32_t c;
    p += utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data()) + p, s.size() - p, &c);
    out.push_back(c);
  }
  return out;
}

Cps utf8proc_normalize(const Cps& in, int form) {
  const std::string s = encode(in);
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), s.size(), &out,
                              static_cast<utf8proc_option_t>(kOptions[form]));
  Cps result = decode(std::string(reinterpret_cast<char*>(out), n));
  std::free(out);
  return result;
}

// utf8proc on the runs between inert code points, which pass through untouched.
Cps split_normalize(const Cps& in, int form, const std::set<int32_t>& inert) {
  Cps out, run;
  for (int32_t cp : in) {
    if (inert.count(cp)) {
      for (int32_t c : utf8proc_normalize(run, form)) out.push_back(c);
      run.clear();
      out.push_back(cp);
    } else {
      run.push_back(cp);
    }
  }
  for (int32_t c : utf8proc_normalize(run, form)) out.push_back(c);
  return out;
}

void print_probe(const Cps& p) {
  for (size_t i = 0; i < p.size(); ++i) std::printf(i ? ",%d" : "%d", p[i]);
  std::printf("\n");
}

int make_probes() {
  for (int32_t cp = 0x80; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const utf8proc_property_t* prop = utf8proc_get_property(cp);
    const bool decomposes = prop->decomp_seqindex != UINT16_MAX || (cp >= 0xAC00 && cp <= 0xD7A3);
    if (prop->combining_class == 0 && !decomposes) continue;
    print_probe({cp});
    if (prop->combining_class != 0) {
      print_probe({cp, 0x0334});
      print_probe({0x0345, cp});
    }
    utf8proc_int32_t buf[32];
    int boundclass = 0;
    const auto n = utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, &boundclass);
    if (n > 1) print_probe(Cps(buf, buf + n));
  }
  print_probe({0x1100, 0x1161});
  print_probe({0xAC00, 0x11A8});
  print_probe({0x1100, 0x1161, 0x11A8});
  return 0;
}

std::string ranges_array(const char* name, const std::set<int32_t>& cps) {
  std::ostringstream out;
  out << "const InertRange " << name << "[] = {";
  int count = 0;
  for (auto it = cps.begin(); it != cps.end();) {
    const int32_t lo = *it;
    int32_t hi = lo;
    ++it;
    while (it != cps.end() && *it == hi + 1) hi = *it++;
    out << (count++ % 6 == 0 ? "\n    " : " ") << "{0x" << std::hex << std::uppercase << lo << ", 0x" << hi << "},";
  }
  out << "\n};\n";
  return out.str();
}

int compare(const char* reference_path, const char* inc_path, const char* asset_path) {
  std::ifstream in(reference_path);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));

  std::set<int32_t> canonical, compat;
  std::vector<bool> interesting(rows.size(), false);
  for (size_t r = 0; r < rows.size(); ++r) {
    const Cps probe = rows[r]["probe"].get<Cps>();
    for (int form = 0; form < 4; ++form) {
      if (utf8proc_normalize(probe, form) == rows[r][kForms[form]].get<Cps>()) continue;
      interesting[r] = true;
      auto& target = form == 0 || form == 1 ? canonical : compat;
      for (int32_t cp : probe)
        if (cp != 0x0334 && cp != 0x0345) target.insert(cp);
    }
  }
  for (int32_t cp : canonical) compat.insert(cp);

  for (size_t r = 0; r < rows.size(); ++r) {
    const Cps probe = rows[r]["probe"].get<Cps>();
    for (int form = 0; form < 4; ++form) {
      const auto& inert = form == 0 || form == 1 ? canonical : compat;
      if (split_normalize(probe, form, inert) != rows[r][kForms[form]].get<Cps>()) {
        std::cerr << "inert code points do not explain probe " << rows[r]["probe"].dump() << " " << kForms[form] << "\n";
        return 1;
      }
    }
  }

  std::ofstream inc(inc_path);
  inc << "// Generated by tests/parity/gen_unicode_normalization.cpp; do not edit. Code points the\n"
         "// reference's normalization tables do not know (assigned after its Unicode version): they\n"
         "// are left as they are and split the text into independently normalized runs.\n"
      << ranges_array("kCanonicalInert", canonical) << ranges_array("kCompatibilityInert", compat);

  std::ofstream asset(asset_path);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (!interesting[r] && r % 40 != 0) continue;
    nlohmann::json line;
    line["text"] = encode(rows[r]["probe"].get<Cps>());
    for (int form = 0; form < 4; ++form) line[kForms[form]] = encode(rows[r][kForms[form]].get<Cps>());
    asset << line.dump() << "\n";
  }
  std::cerr << rows.size() << " probes; " << canonical.size() << " canonical-inert, " << compat.size()
            << " compatibility-inert code points\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "probes") return make_probes();
  if (argc == 6 && std::string(argv[1]) == "compare") return compare(argv[3], argv[4], argv[5]);
  std::cerr << "usage: gen_unicode_normalization probes | compare PROBES REFERENCE INC ASSET\n";
  return 2;
}
