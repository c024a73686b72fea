// The train block (grammar in frontend/Parser.h):
//
//   trainstmt = "steps" INTEGER | "batch" INTEGER
//             | ("sgd" | "adam" | "adamw") "lr" lrlist { option }
//             | "clip_grad_norm" NUMBER | "warmup" INTEGER | "cosine" [ "min_lr" NUMBER ]
//   lrlist    = NUMBER { "," NUMBER "after" INTEGER }
//   option    = "momentum" NUMBER | "dampening" NUMBER | "nesterov"   (sgd)
//             | "betas" NUMBER NUMBER | "eps" NUMBER                  (adam, adamw)
//             | "weight_decay" NUMBER                                 (all three)
//
// Ranges (momentum in [0, 1), ...) are checked by lowering, which knows the
// step count; the parser checks the shape of each statement.
#include "frontend/ParserImpl.h"

#include <fmt/format.h>

namespace mlpc::detail {

void Parser::trainBlock() {
  Token keyword = take();
  bool duplicate = ast_.train.has_value();
  if (duplicate)
    report(keyword, "duplicate 'train' block");
  openBlock(keyword);
  TrainBlock train;
  train.loc = keyword.loc;
  BlockEnd end;
  while ((end = blockEnds(keyword)) == BlockEnd::No) {
    try {
      if (at(TokenKind::Newline))
        take();
      else
        trainSetting(train);
    } catch (SyntaxError &) {
      sync(Block::Train);
    }
  }
  if (!duplicate)
    ast_.train = std::move(train);
  if (end == BlockEnd::Brace)
    endStatement(Block::None);
}

double Parser::numberAfter(const std::string &what) {
  return expect(TokenKind::Number, fmt::format("expected number after '{}'", what)).number;
}

std::vector<LrPhase> Parser::lrList() {
  std::vector<LrPhase> schedule;
  Token lr = expect(TokenKind::Number, "expected learning rate after 'lr'");
  schedule.push_back({lr.number, 0, lr.loc});
  while (at(TokenKind::Comma)) {
    take();
    lr = expect(TokenKind::Number, "expected learning rate after ','");
    if (!atWord("after"))
      failExpected("expected 'after' after learning rate");
    take();
    Token step = expectInteger("expected integer step after 'after'");
    // Phases must be in step order, or the schedule is ambiguous.
    if (step.integer <= schedule.back().fromStep) {
      report(step,
             fmt::format("learning rate phase must start after step {}", schedule.back().fromStep));
      throw SyntaxError{};
    }
    schedule.push_back({lr.number, step.integer, lr.loc});
  }
  return schedule;
}

void Parser::optimizerStatement(const Token &keyword, TrainBlock &train) {
  OptimizerDecl o;
  o.loc = keyword.loc;
  o.kind = keyword.text == "sgd"    ? OptimizerKind::SGD
           : keyword.text == "adam" ? OptimizerKind::Adam
                                    : OptimizerKind::AdamW;
  if (o.kind == OptimizerKind::AdamW)
    o.weightDecay = 0.01; // torch.optim.AdamW's default
  if (!atWord("lr"))
    failExpected(fmt::format("expected 'lr' after '{}'", keyword.text));
  take();
  std::vector<LrPhase> schedule = lrList();
  bool sgd = o.kind == OptimizerKind::SGD;
  while (at(TokenKind::Ident)) {
    Token option = take();
    std::string name(option.text);
    if (sgd && name == "momentum")
      o.momentum = numberAfter(name);
    else if (sgd && name == "dampening")
      o.dampening = numberAfter(name);
    else if (sgd && name == "nesterov")
      o.nesterov = true;
    else if (name == "weight_decay")
      o.weightDecay = numberAfter(name);
    else if (!sgd && name == "betas") {
      o.beta1 = numberAfter(name);
      o.beta2 = numberAfter(name);
    } else if (!sgd && name == "eps")
      o.eps = numberAfter(name);
    else {
      report(option, fmt::format("unknown option '{}' for '{}' (expected {})", name, keyword.text,
                                 sgd ? "'momentum', 'dampening', 'nesterov' or 'weight_decay'"
                                     : "'betas', 'eps' or 'weight_decay'"));
      throw SyntaxError{};
    }
  }
  if (train.optimizer) {
    report(keyword, "duplicate optimizer setting (one of 'sgd', 'adam', 'adamw')");
    return;
  }
  train.optimizer = o;
  train.schedule = std::move(schedule);
}

void Parser::trainSetting(TrainBlock &train) {
  if (!at(TokenKind::Ident))
    failExpected("expected train setting");
  Token setting = take();
  auto once = [&](bool seen) {
    if (seen)
      report(setting, fmt::format("duplicate '{}' setting", setting.text));
    return !seen;
  };
  if (setting.text == "steps" || setting.text == "batch" || setting.text == "warmup") {
    Token value = expectInteger(fmt::format("expected integer after '{}'", setting.text));
    std::optional<int64_t> &slot = setting.text == "steps"   ? train.steps
                                   : setting.text == "batch" ? train.batch
                                                             : train.warmup;
    SourceLoc &loc = setting.text == "steps"   ? train.stepsLoc
                     : setting.text == "batch" ? train.batchLoc
                                               : train.warmupLoc;
    if (once(slot.has_value())) {
      slot = value.integer;
      loc = value.loc;
    }
  } else if (setting.text == "sgd" || setting.text == "adam" || setting.text == "adamw") {
    optimizerStatement(setting, train);
  } else if (setting.text == "clip_grad_norm") {
    double value = numberAfter("clip_grad_norm");
    if (once(train.clipGradNorm.has_value())) {
      train.clipGradNorm = value;
      train.clipLoc = setting.loc;
    }
  } else if (setting.text == "cosine") {
    double minLr = 0;
    if (atWord("min_lr")) {
      take();
      minLr = numberAfter("min_lr");
    }
    if (once(train.cosineMinLr.has_value())) {
      train.cosineMinLr = minLr;
      train.cosineLoc = setting.loc;
    }
  } else {
    report(setting, fmt::format("unknown train setting '{}' (expected 'steps', 'batch', 'sgd', "
                                "'adam', 'adamw', 'clip_grad_norm', 'warmup' or 'cosine')",
                                setting.text));
    throw SyntaxError{};
  }
  endStatement(Block::Train);
}

} // namespace mlpc::detail
