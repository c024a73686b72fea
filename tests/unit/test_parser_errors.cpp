// Malformed model files: the exact diagnostics the user sees, and that the
// parser recovers to report every bad statement (and never crashes or hangs).
#include "frontend/Parser.h"

#include <catch2/catch.hpp>

#include <string>

using namespace mlpc;

namespace {

std::string errors(const std::string &src) {
  DiagnosticEngine diags("t.mlp", src);
  parseModel(src, diags);
  return diags.render();
}

} // namespace

TEST_CASE("malformed: empty file", "[parser][malformed]") {
  CHECK(errors("") == "t.mlp:1:1: error: expected 'model' declaration, found end of file\n"
                      "\n"
                      "^\n");
  CHECK(errors("\n  # only a comment\n\n") ==
        "t.mlp:2:19: error: expected 'model' declaration, found end of file\n"
        "  # only a comment\n"
        "                  ^\n");
}

TEST_CASE("malformed: missing model header", "[parser][malformed]") {
  // Reported once; the declarations are still parsed.
  CHECK(errors("dim T = 3\ndim E = 2 2\n") ==
        "t.mlp:1:1: error: expected 'model' declaration, found identifier 'dim'\n"
        "dim T = 3\n"
        "^\n"
        "t.mlp:2:11: error: expected newline after statement, found number '2'\n"
        "dim E = 2 2\n"
        "          ^\n");
  CHECK(errors("hello world\ndim T = 3\n") ==
        "t.mlp:1:1: error: expected 'model' declaration, found identifier 'hello'\n"
        "hello world\n"
        "^\n");
}

TEST_CASE("malformed: model name and duplicate model", "[parser][malformed]") {
  CHECK(errors("model\n") == "t.mlp:1:6: error: expected model name after 'model', found newline\n"
                             "model\n"
                             "     ^\n");
  CHECK(errors("model a\nmodel b\n") == "t.mlp:2:1: error: duplicate 'model' declaration\n"
                                        "model b\n"
                                        "^\n");
}

TEST_CASE("malformed: truncated file", "[parser][malformed]") {
  CHECK(errors("model m\nparam W : [3, 3") ==
        "t.mlp:2:16: error: expected ',' or ']' in shape, found end of file\n"
        "param W : [3, 3\n"
        "               ^\n");
  CHECK(errors("model m\nparam W : [3, 3]") ==
        "t.mlp:2:17: error: expected '=' after parameter shape, found end of file\n"
        "param W : [3, 3]\n"
        "                ^\n");
  CHECK(errors("model m\ndim T =") == "t.mlp:2:8: error: expected expression, found end of file\n"
                                      "dim T =\n"
                                      "       ^\n");
}

TEST_CASE("malformed: binary garbage", "[parser][malformed]") {
  std::string garbage("\x7f"
                      "ELF\x02\x01\x01\x00\x00\x00\n\xff\xfe",
                      13);
  // One message per run of bad bytes, and none from the parser on top.
  CHECK(errors(garbage) == "t.mlp:1:1: error: unexpected byte 0x7f\n"
                           "?ELF??????\n"
                           "^\n"
                           "t.mlp:1:5: error: unexpected byte 0x02\n"
                           "?ELF??????\n"
                           "    ^\n"
                           "t.mlp:2:1: error: unexpected byte 0xff\n"
                           "??\n"
                           "^\n");
}

TEST_CASE("malformed: number out of range", "[parser][malformed]") {
  CHECK(errors("model m\nparam W : [1] = 1e999 * randn\n") ==
        "t.mlp:2:17: error: number '1e999' is out of range\n"
        "param W : [1] = 1e999 * randn\n"
        "                ^\n");
}

TEST_CASE("malformed: bad characters cost one error per statement", "[parser][malformed]") {
  CHECK(errors("model m\ndim T = 3 $ 4\ndim E = 2;\n") ==
        "t.mlp:2:11: error: unexpected character '$'\n"
        "dim T = 3 $ 4\n"
        "          ^\n"
        "t.mlp:3:10: error: unexpected character ';'\n"
        "dim E = 2;\n"
        "         ^\n");
}

TEST_CASE("malformed: deep nesting does not crash", "[parser][malformed]") {
  std::string parens = "model m\nparam W : [1] = " + std::string(100000, '(') + "x\ndim T = 3 3\n";
  std::string out = errors(parens);
  CHECK(out.find("t.mlp:2:218: error: expression is nested too deeply\n") == 0);
  // Recovery resumes at the next statement.
  CHECK(out.find("t.mlp:3:11: error: expected newline after statement, found number '3'\n") !=
        std::string::npos);

  std::string minus = "model m\nparam W : [1] = " + std::string(100000, '-') + "x\n";
  CHECK(errors(minus).find("t.mlp:2:218: error: expression is nested too deeply\n") == 0);

  std::string powers = "model m\nparam W : [1] = x";
  for (int i = 0; i < 100000; ++i)
    powers += "^x";
  CHECK(errors(powers).find("t.mlp:2:419: error: expression is nested too deeply\n") == 0);

  std::string calls = "model m\nparam W : [1] = ";
  for (int i = 0; i < 50000; ++i)
    calls += "f([";
  CHECK(errors(calls).find("error: expression is nested too deeply\n") != std::string::npos);

  // One level more than the limit: the error is at the first token past it.
  CHECK(errors("model m\ndim T = " + std::string(201, '(') + "x" + std::string(201, ')'))
            .find("t.mlp:2:210: error: expression is nested too deeply\n") == 0);
}

TEST_CASE("malformed: missing ')'", "[parser][malformed]") {
  // At the end of the line, not at whatever the next line starts with.
  CHECK(errors("model m\nparam W : [3] = sqrt(3\ndim T = 4\n") ==
        "t.mlp:2:23: error: expected ',' or ')' in call to 'sqrt', found newline\n"
        "param W : [3] = sqrt(3\n"
        "                      ^\n");
  CHECK(errors("model m\nparam W : [3] = (a + b\n") ==
        "t.mlp:2:23: error: expected ')', found newline\n"
        "param W : [3] = (a + b\n"
        "                      ^\n");
  CHECK(errors("model m\nforward {\n  y = (a b)\n}\n") ==
        "t.mlp:3:10: error: expected ')', found identifier 'b'\n"
        "  y = (a b)\n"
        "         ^\n");
}

TEST_CASE("malformed: missing ']'", "[parser][malformed]") {
  CHECK(errors("model m\nforward {\n  y = C[X\n  z = g(x, [1, 2)\n}\n") ==
        "t.mlp:3:10: error: expected ']' after index, found newline\n"
        "  y = C[X\n"
        "         ^\n"
        "t.mlp:4:17: error: expected ',' or ']' in list, found ')'\n"
        "  z = g(x, [1, 2)\n"
        "                ^\n");
  CHECK(errors("model m\nparam W : [3 3] = 1\n") ==
        "t.mlp:2:14: error: expected ',' or ']' in shape, found number '3'\n"
        "param W : [3 3] = 1\n"
        "             ^\n");
}

TEST_CASE("malformed: missing '='", "[parser][malformed]") {
  CHECK(errors("model m\ndim T 3\n") ==
        "t.mlp:2:7: error: expected '=' after dimension name, found number '3'\n"
        "dim T 3\n"
        "      ^\n");
  CHECK(errors("model m\nparam W : [3] randn\n") ==
        "t.mlp:2:15: error: expected '=' after parameter shape, found identifier 'randn'\n"
        "param W : [3] randn\n"
        "              ^\n");
  CHECK(errors("model m\nforward {\n  y x\n}\n") ==
        "t.mlp:3:5: error: expected '=' after 'y', found identifier 'x'\n"
        "  y x\n"
        "    ^\n");
}

TEST_CASE("malformed: tensor declarations", "[parser][malformed]") {
  CHECK(errors("model m\ninput X [N]\n") ==
        "t.mlp:2:9: error: expected ':' after input name, found '['\n"
        "input X [N]\n"
        "        ^\n");
  CHECK(errors("model m\ntarget Y : [N]\n") ==
        "t.mlp:2:12: error: expected element type after ':', found '['\n"
        "target Y : [N]\n"
        "           ^\n");
  CHECK(errors("model m\ninput : i32[N]\n") ==
        "t.mlp:2:7: error: expected input name after 'input', found ':'\n"
        "input : i32[N]\n"
        "      ^\n");
  CHECK(errors("model m\ninput X : i32[]\n") ==
        "t.mlp:2:15: error: expected expression, found ']'\n"
        "input X : i32[]\n"
        "              ^\n");
}

TEST_CASE("malformed: unterminated forward block", "[parser][malformed]") {
  // Located at the end of the file, which is the end of the last real line.
  CHECK(errors("model m\nforward {\n  x = a\n\n# trailing comment\n\n") ==
        "t.mlp:5:19: error: expected '}' to close 'forward' block\n"
        "# trailing comment\n"
        "                  ^\n");
  // A declaration keyword ends the block, so what follows parses normally.
  CHECK(errors("model m\nforward {\n  x = a\ntrain {\n  steps 1\n}\n") ==
        "t.mlp:4:1: error: expected '}' to close 'forward' block\n"
        "train {\n"
        "^\n");
  CHECK(errors("model m\ntrain {\n  steps 1\n") ==
        "t.mlp:3:10: error: expected '}' to close 'train' block\n"
        "  steps 1\n"
        "         ^\n");
}

TEST_CASE("malformed: several errors in one file are all reported", "[parser][malformed]") {
  CHECK(errors("model m\n"
               "dim = 3\n"
               "input X i32[N]\n"
               "param W : [3] = 1 +\n"
               "forward {\n"
               "  y = f(a,)\n"
               "  3 = x\n"
               "  ok = a\n"
               "  dim = 2\n"
               "}\n"
               "train {\n"
               "  stepz 10\n"
               "}\n") ==
        "t.mlp:2:5: error: expected dimension name after 'dim', found '='\n"
        "dim = 3\n"
        "    ^\n"
        "t.mlp:3:9: error: expected ':' after input name, found identifier 'i32'\n"
        "input X i32[N]\n"
        "        ^\n"
        "t.mlp:4:20: error: expected expression, found newline\n"
        "param W : [3] = 1 +\n"
        "                   ^\n"
        "t.mlp:6:11: error: expected expression, found ')'\n"
        "  y = f(a,)\n"
        "          ^\n"
        "t.mlp:7:3: error: expected assignment in 'forward' block, found number '3'\n"
        "  3 = x\n"
        "  ^\n"
        "t.mlp:9:3: error: cannot assign to reserved word 'dim'\n"
        "  dim = 2\n"
        "  ^\n"
        "t.mlp:12:3: error: unknown train setting 'stepz' (expected 'steps', 'batch', 'sgd', "
        "'adam', 'adamw', 'clip_grad_norm', 'warmup' or 'cosine')\n"
        "  stepz 10\n"
        "  ^\n");
}

TEST_CASE("malformed: duplicate blocks", "[parser][malformed]") {
  std::string src = "model m\nforward {\n  a = 1\n}\nforward {\n  b = (\n}\n"
                    "train {\n}\ntrain {\n}\n";
  DiagnosticEngine diags("t.mlp", src);
  ModelAST ast = parseModel(src, diags);
  // The duplicate is still checked for errors, but the first block is kept.
  CHECK(diags.render() == "t.mlp:5:1: error: duplicate 'forward' block\n"
                          "forward {\n"
                          "^\n"
                          "t.mlp:7:1: error: expected expression, found '}'\n"
                          "}\n"
                          "^\n"
                          "t.mlp:10:1: error: duplicate 'train' block\n"
                          "train {\n"
                          "^\n");
  REQUIRE(ast.forward.size() == 1);
  CHECK(ast.forward[0].name == "a");
}

TEST_CASE("malformed: train settings", "[parser][malformed]") {
  CHECK(errors("model m\n"
               "train {\n"
               "  steps 1.5\n"
               "  steps 99999999999999999999\n"
               "  batch\n"
               "  batch 1\n"
               "  batch 2\n"
               "  sgd rate 0.1\n"
               "  sgd lr 0.1,\n"
               "  sgd lr 0.1, 0.2\n"
               "  sgd lr 0.1, 0.01 after 10, 0.001 after 10\n"
               "  sgd lr 0.1\n"
               "  sgd lr 0.2\n"
               "  3\n"
               "}\n") ==
        "t.mlp:3:9: error: expected integer after 'steps', found number '1.5'\n"
        "  steps 1.5\n"
        "        ^\n"
        "t.mlp:4:9: error: expected integer after 'steps', found number '99999999999999999999'\n"
        "  steps 99999999999999999999\n"
        "        ^\n"
        "t.mlp:5:8: error: expected integer after 'batch', found newline\n"
        "  batch\n"
        "       ^\n"
        "t.mlp:7:3: error: duplicate 'batch' setting\n"
        "  batch 2\n"
        "  ^\n"
        "t.mlp:8:7: error: expected 'lr' after 'sgd', found identifier 'rate'\n"
        "  sgd rate 0.1\n"
        "      ^\n"
        "t.mlp:9:14: error: expected learning rate after ',', found newline\n"
        "  sgd lr 0.1,\n"
        "             ^\n"
        "t.mlp:10:18: error: expected 'after' after learning rate, found newline\n"
        "  sgd lr 0.1, 0.2\n"
        "                 ^\n"
        "t.mlp:11:42: error: learning rate phase must start after step 10\n"
        "  sgd lr 0.1, 0.01 after 10, 0.001 after 10\n"
        "                                         ^\n"
        "t.mlp:13:3: error: duplicate optimizer setting (one of 'sgd', 'adam', 'adamw')\n"
        "  sgd lr 0.2\n"
        "  ^\n"
        "t.mlp:14:3: error: expected train setting, found number '3'\n"
        "  3\n"
        "  ^\n");
}

TEST_CASE("malformed: stray tokens between declarations", "[parser][malformed]") {
  CHECK(errors("model m\n}\nforward {\n  x = 1\n} extra\nfoo = 1\n") ==
        "t.mlp:2:1: error: expected declaration, found '}'\n"
        "}\n"
        "^\n"
        "t.mlp:5:3: error: expected newline after statement, found identifier 'extra'\n"
        "} extra\n"
        "  ^\n"
        "t.mlp:6:1: error: unknown declaration 'foo' (expected 'dim', 'input', 'target', "
        "'param', 'forward' or 'train')\n"
        "foo = 1\n"
        "^\n");
}

TEST_CASE("malformed: block brace on the next line", "[parser][malformed]") {
  std::string src = "model m\nforward\n{\n  x = 1\n}\n";
  DiagnosticEngine diags("t.mlp", src);
  ModelAST ast = parseModel(src, diags);
  CHECK(diags.render() == "t.mlp:2:8: error: expected '{' after 'forward', found newline\n"
                          "forward\n"
                          "       ^\n");
  CHECK(ast.forward.size() == 1); // one error, and the block is parsed as meant
}

TEST_CASE("malformed: error recovery skips a wrapped expression", "[parser][malformed]") {
  // The error is inside an unclosed call; the newline inside the brackets does
  // not end the statement, but the next statement still gets parsed.
  CHECK(errors("model m\nforward {\n  y = f(a b, g(\n     c)\n  z = 1 1\n}\n") ==
        "t.mlp:3:11: error: expected ',' or ')' in call to 'f', found identifier 'b'\n"
        "  y = f(a b, g(\n"
        "          ^\n"
        "t.mlp:5:9: error: expected newline after statement, found number '1'\n"
        "  z = 1 1\n"
        "        ^\n");
}

TEST_CASE("malformed: a flood of errors is capped", "[parser][malformed]") {
  std::string src = "model m\n";
  for (int i = 0; i < 1000; ++i)
    src += "dim\n";
  DiagnosticEngine diags("t.mlp", src);
  parseModel(src, diags);
  CHECK(diags.errorCount() == 1000);
  CHECK(diags.diagnostics().size() == 101);
  CHECK(diags.diagnostics().back().message == "too many errors, stopping here");
}
