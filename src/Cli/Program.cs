using ControlPlane.Cli;
using ControlPlane.Cli.Output;

return await NetctlApp.RunAsync(args, Terminal.System);
