#include "core/metrics_text.hpp"

#include <cstdio>

namespace nm {

MetricsText& MetricsText::family(std::string_view name, std::string_view type,
                                 std::string_view help) {
    text_.append("# HELP ").append(name).append(" ").append(help).append("\n");
    text_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    return *this;
}

MetricsText& MetricsText::sample(std::string_view name, double value, std::string_view labels) {
    text_.append(name);
    if (!labels.empty()) text_.append("{").append(labels).append("}");
    char number[32];
    std::snprintf(number, sizeof number, " %.17g\n", value);
    text_.append(number);
    return *this;
}

MetricsText& MetricsText::samples(std::string_view name, std::initializer_list<Labelled> list) {
    for (const auto& [labels, value] : list) sample(name, value, labels);
    return *this;
}

MetricsText& MetricsText::single(std::string_view name, std::string_view type,
                                 std::string_view help, double value) {
    return family(name, type, help).sample(name, value);
}

}  // namespace nm
