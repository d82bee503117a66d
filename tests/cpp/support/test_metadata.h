// A model.json in the contract's shape, for tests that need metadata without a
// model file.
#ifndef ARGSERVE_TESTS_CPP_TEST_METADATA_H_
#define ARGSERVE_TESTS_CPP_TEST_METADATA_H_

#include <string>

namespace argserve::testing {

// `extra` is inserted as further top-level members, e.g. R"("calibration":
// {...})".
inline std::string TestModelJson(int max_residues = 100,
                                 const std::string& extra = "") {
  return R"({"format": "argserve-model/1", "name": "test", "version": "1",
    "classes": ["aminoglycoside", "beta-lactam", "nonarg"], "nonarg_class": "nonarg",
    "alphabet": ["<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D",
                 "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
                 "<null_1>", "<mask>"],
    "special_tokens": {"cls": 0, "pad": 1, "eos": 2, "unk": 3, "mask": 32},
    "residues": "ACDEFGHIKLMNPQRSTVWYXBUZO", "max_residues": )" +
         std::to_string(max_residues) + R"(,
    "backbone": {"architecture": "esm2", "num_layers": 2, "embed_dim": 32, "attention_heads": 4,
                 "source": "random"})" +
         (extra.empty() ? "" : ", " + extra) + "}";
}

}  // namespace argserve::testing

#endif  // ARGSERVE_TESTS_CPP_TEST_METADATA_H_
