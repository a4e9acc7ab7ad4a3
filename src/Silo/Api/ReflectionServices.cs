using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace ControlPlane.Silo.Api;

/// <summary>
/// What server reflection (v1 and v1alpha) describes: every service of api.proto, grpc.health.v1
/// and reflection itself. The health service's file is described under the path it has in
/// proto/ and in gRPC's own repository, <see cref="HealthFile"/>: Grpc.HealthCheck was compiled
/// from a plain "health.proto", so asking for the file by its usual path (as a client resolving
/// an import does) answered NOT_FOUND.
/// </summary>
internal static class ReflectionServices
{
    public const string HealthFile = "grpc/health/v1/health.proto";

    public static void AddTo(IServiceCollection services)
    {
        services.AddGrpcReflection();
        var described = Described();
        services.RemoveAll<ReflectionServiceImpl>();
        services.RemoveAll<ReflectionV1ServiceImpl>();
        services.AddSingleton(new ReflectionServiceImpl(described));
        services.AddSingleton(new ReflectionV1ServiceImpl(described));
    }

    private static Google.Protobuf.Reflection.ServiceDescriptor[] Described()
    {
        var health = Grpc.Health.V1.HealthReflection.Descriptor.ToProto();
        health.Name = HealthFile;
        var healthFile = FileDescriptor.BuildFromByteStrings([health.ToByteString()])[0];
        return [.. Contracts.V1.ApiReflection.Descriptor.Services, .. healthFile.Services,
            Grpc.Reflection.V1.ServerReflection.Descriptor, Grpc.Reflection.V1Alpha.ServerReflection.Descriptor];
    }
}
