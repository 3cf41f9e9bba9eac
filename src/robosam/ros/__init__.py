"""ROS 2: the node (``python -m robosam.ros.node``, needs rclpy), its logic as plain classes
(``robosam.ros.pipeline``), message conversions (``robosam.ros.messages``) and offline bag processing
(``robosam.ros.bag``, with the ``rosbags`` library: ``pip install robosam[ros]``)."""
