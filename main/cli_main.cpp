// coapfleet: the operator CLI. Assembles the subcommands (main/cli/), parses
// the command line and runs the chosen command over CoAP.
//
//   coapfleet --server coap://10.0.0.1:5683 nodes
//   JOB=$(coapfleet update create --name tools --version 2 --type pip --packages rich)
//   coapfleet update install "$JOB" && coapfleet update watch "$JOB"
//   KEY=$(coapfleet key add node-7 --role node)
#include "main/cli/commands.hpp"
#include "main/cli/context.hpp"

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
  using namespace coapfleet::cli;
  context ctx;
  const char* env = std::getenv("COAPFLEET_SERVER");
  ctx.options.server = env && *env ? env : "coap://127.0.0.1:5683";

  CLI::App app{"coapfleet " COAPFLEET_VERSION
               ": the operator's command line for a coapfleet server (CoAP over UDP).\n"
               "Tables for people, --json for scripts."};
  app.name("coapfleet");
  app.footer(exit_code_help);  // inherited by every subcommand's --help
  app.fallthrough();           // global options may follow the subcommand
  app.require_subcommand(1);
  app.add_option("--server", ctx.options.server,
                 "The server, coap://HOST[:PORT] or coaps://HOST[:PORT] (DTLS) with an IP address or localhost "
                 "(default: $COAPFLEET_SERVER, else coap://127.0.0.1:5683)");
  app.add_option("--identity", ctx.options.identity,
                 "For coaps://: the identity of your key (default: $COAPFLEET_IDENTITY)")
    ->envname("COAPFLEET_IDENTITY");
  app.add_option("--key-file", ctx.options.key_file,
                 "For coaps://: the file holding your key, readable only by you "
                 "(default: $COAPFLEET_KEY_FILE)")
    ->envname("COAPFLEET_KEY_FILE");
  app.add_option("--cert", ctx.options.cert_file,
                 "For coaps:// with X.509 instead of a key: your certificate, PEM (default: "
                 "$COAPFLEET_CERT)")
    ->envname("COAPFLEET_CERT");
  app.add_option("--key", ctx.options.cert_key_file,
                 "The private key of --cert, PEM, readable only by you (default: $COAPFLEET_KEY)")
    ->envname("COAPFLEET_KEY");
  app.add_option("--ca", ctx.options.ca_file,
                 "The CA the server's certificate must chain to, PEM (default: $COAPFLEET_CA)")
    ->envname("COAPFLEET_CA");
  app.add_option("--server-name", ctx.options.server_name,
                 "The name the server's certificate must carry (DNS subjectAltName, or CN without "
                 "one; an IP address: an IP subjectAltName). Default: the host of --server "
                 "($COAPFLEET_SERVER_NAME)")
    ->envname("COAPFLEET_SERVER_NAME");
  app.add_flag("--json", ctx.options.json,
               "Print the server's JSON answer instead of tables (for scripts)");
  app.add_option("--timeout", ctx.options.timeout, "Seconds to wait for each answer")
    ->check(CLI::PositiveNumber)
    ->capture_default_str();

  add_fleet_commands(app, ctx);
  add_update_commands(app, ctx);
  add_artifact_commands(app, ctx);
  add_artifact_delete_command(*app.get_subcommand("artifact"), ctx);
  add_system_commands(app, ctx);
  add_cluster_commands(app, ctx);
  add_key_commands(app, ctx);
  add_audit_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message; CLI11's own codes (105, 106, ...) are not ours
    return exit_usage;
  }
  if (!ctx.client())  // --server does not parse; already reported
    return exit_usage;
  if (!ctx.action) {
    std::cerr << app.help();
    return exit_usage;
  }
  return ctx.action();
}
