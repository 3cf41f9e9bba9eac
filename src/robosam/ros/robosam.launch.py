"""ros2 launch robosam.launch.py [params_file:=...]: the robosam node with its parameters file."""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration


def generate_launch_description() -> LaunchDescription:
    default_params = str(Path(__file__).with_name("params.yaml"))
    return LaunchDescription(
        [
            DeclareLaunchArgument("params_file", default_value=default_params),
            ExecuteProcess(
                cmd=[
                    "python3",
                    "-m",
                    "robosam.ros.node",
                    "--ros-args",
                    "--params-file",
                    LaunchConfiguration("params_file"),
                ],
                output="screen",
            ),
        ]
    )
