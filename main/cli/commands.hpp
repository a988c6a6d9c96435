// The subcommands of `coapfleet`, one group per file. Each add_* registers
// its subcommands on `app`; the chosen one stores its work in ctx.action,
// which main() runs after parsing (so global options given anywhere apply).
#pragma once

#include "main/cli/context.hpp"

#include <CLI/CLI.hpp>

namespace coapfleet::cli {

/// nodes, node, health (fleet_commands.cpp)
void add_fleet_commands(CLI::App& app, context& ctx);
/// update create|install|status|cancel|list|watch|run (update_commands.cpp)
void add_update_commands(CLI::App& app, context& ctx);
/// artifact upload|list (artifact_commands.cpp)
void add_artifact_commands(CLI::App& app, context& ctx);
/// artifact delete (under `artifact`).
void add_artifact_delete_command(CLI::App& artifact, context& ctx);
/// node delete ID, node history ID (node_admin_commands.cpp).
int delete_node(context& ctx, const std::string& id);
int label_node(context& ctx, const std::string& id, const std::vector<std::string>& changes);
int node_history(context& ctx, const std::string& id, long long limit);
int job_history(context& ctx, const std::string& job, long long limit);
/// system status|restart|shutdown, test, discover (system_commands.cpp)
void add_system_commands(CLI::App& app, context& ctx);
/// cluster status (cluster_commands.cpp).
void add_cluster_commands(CLI::App& app, context& ctx);
/// key add|list|revoke|rotate (key_commands.cpp)
void add_key_commands(CLI::App& app, context& ctx);
/// audit (audit_commands.cpp)
void add_audit_commands(CLI::App& app, context& ctx);

}  // namespace coapfleet::cli
