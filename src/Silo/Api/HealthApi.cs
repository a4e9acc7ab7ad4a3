using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.Health;

namespace ControlPlane.Silo.Api;

/// <summary>grpc.health.v1.Health/Check: SERVING once the controllers have synced, NOT_SERVING while stopping.</summary>
public static class HealthApi
{
    public const string Method = "/grpc.health.v1.Health/Check";

    public static void Map(GrpcServer server, Func<bool> serving) =>
        server.AddUnary(Method, HealthCheckRequest.Parser, (_, _) => Task.FromResult(new HealthCheckResponse
        {
            Status = serving() ? HealthCheckResponse.Types.ServingStatus.Serving : HealthCheckResponse.Types.ServingStatus.NotServing,
        }));
}
